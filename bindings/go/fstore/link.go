//go:build !fstore_nopkgconfig

package fstore

// The default: the flags of pkg-config's package fstore (the fstore.pc that
// libfstore's install writes; PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig for a
// prefix outside pkg-config's search path). The header is this module's own
// copy, fstore.h beside this file.

/*
#cgo pkg-config: fstore
*/
import "C"
