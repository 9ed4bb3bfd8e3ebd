// Package migrations holds the database schema as golang-migrate migrations, one directory
// per SQL dialect, embedded in the binary and applied at start.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
