//go:build fstore_pkgconfig

package fstore

/*
#cgo pkg-config: fstore
*/
import "C"
