//go:build !unix

package sqlstore

import "os"

// Without flock, migrations are serialised within one process only: start processes
// sharing a SQLite file one after the other on such systems.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) error { return nil }
