package fstore

/*
#include <stdint.h>
#include <string.h>
#include "fstore.h"

// The exported Go callbacks (stream.go). The stream's private_data holds a
// cgo.Handle as an integer, which only C reads: Go never sees it as a pointer.
extern int fstoreGoStreamSchema(uintptr_t, struct ArrowSchema*);
extern int fstoreGoStreamNext(uintptr_t, struct ArrowArray*);
extern char* fstoreGoStreamLastError(uintptr_t);
extern void fstoreGoStreamRelease(uintptr_t);

// The consumer's out-structs may hold garbage, which Go must never see as
// pointers: clear them first (as arrow-go's own exporter does).
static int fstore_go_stream_get_schema(struct ArrowArrayStream* stream, struct ArrowSchema* out) {
	memset(out, 0, sizeof *out);
	return fstoreGoStreamSchema((uintptr_t)stream->private_data, out);
}

static int fstore_go_stream_get_next(struct ArrowArrayStream* stream, struct ArrowArray* out) {
	memset(out, 0, sizeof *out);
	return fstoreGoStreamNext((uintptr_t)stream->private_data, out);
}

static const char* fstore_go_stream_get_last_error(struct ArrowArrayStream* stream) {
	return fstoreGoStreamLastError((uintptr_t)stream->private_data);
}

static void fstore_go_stream_release(struct ArrowArrayStream* stream) {
	fstoreGoStreamRelease((uintptr_t)stream->private_data);
	stream->release = NULL;
	stream->private_data = NULL;
}

static void fstore_go_export_stream(struct ArrowArrayStream* out, uintptr_t handle) {
	out->get_schema = fstore_go_stream_get_schema;
	out->get_next = fstore_go_stream_get_next;
	out->get_last_error = fstore_go_stream_get_last_error;
	out->release = fstore_go_stream_release;
	out->private_data = (void*)handle;
}

static void fstore_go_release_stream(struct ArrowArrayStream* stream) {
	if (stream->release != NULL) {
		stream->release(stream);
	}
}
*/
import "C"

import "runtime/cgo"

// exportStream makes *out (zeroed, in C memory) a stream over src whose
// callbacks are the recovered Go functions of stream.go. release, if not
// nil, runs when the consumer releases the stream; a borrowed src (nil
// release) must outlive the stream.
func exportStream(src recordSource, release func(), out *C.struct_ArrowArrayStream) *exportedStream {
	s := &exportedStream{src: src, release: release}
	C.fstore_go_export_stream(out, C.uintptr_t(cgo.NewHandle(s)))
	return s
}

// releaseStream releases *stream unless its consumer already did.
func releaseStream(stream *C.struct_ArrowArrayStream) {
	C.fstore_go_release_stream(stream)
}
