//go:build !fstore_pkgconfig

package fstore

// The library directory comes from the environment (CGO_LDFLAGS=-L...), or
// build with -tags fstore_pkgconfig to ask pkg-config (see the package doc).

/*
#cgo LDFLAGS: -lfstore
*/
import "C"
