package fstore

/*
#include "fstore.h"

// The exported Go callback (log.go).
extern void fstoreGoLog(void*, fstore_log_level, char*);

static void fstore_go_route_logs(void) {
	fstore_log_set_callback((fstore_log_fn)fstoreGoLog, NULL);
}
*/
import "C"

// routeLogsToGo sends the library's log lines to fstoreGoLog.
func routeLogsToGo() { C.fstore_go_route_logs() }
