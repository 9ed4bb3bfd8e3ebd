// Package migrations holds the database schema as golang-migrate migrations, one directory
// per SQL dialect, embedded in the binary and applied at start.
//
// Each migration must run in one transaction: no CREATE INDEX CONCURRENTLY, no BEGIN or
// COMMIT of its own. The store relies on it when a migration is cut short (it starts it
// again, knowing nothing of it was kept).
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
