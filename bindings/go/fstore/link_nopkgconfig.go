//go:build fstore_nopkgconfig

package fstore

// For a library that is not installed (a cargo target directory): the tag
// fstore_nopkgconfig skips pkg-config, and the library's directory comes
// from the environment, CGO_LDFLAGS="-L$DIR -Wl,-rpath,$DIR".

/*
#cgo LDFLAGS: -lfstore
*/
import "C"
