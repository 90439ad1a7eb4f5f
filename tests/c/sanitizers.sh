# Sourced by the C and C++ test scripts: the sanitizer variants of the test
# programs. Only the test programs (and the header-only C++ binding compiled
# into them) are instrumented; libfstore is a Rust cdylib built without
# sanitizers. What that means for each variant:
#
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer. ASan's allocator
#         serves malloc and free for the whole process, libfstore included:
#         LeakSanitizer sees the library's allocations, and heap errors in its
#         calls into libc (memcpy, free) are caught too. Valgrind cannot run
#         with it: a separate build and run.
#   tsan  ThreadSanitizer. It cannot see synchronisation done inside
#         uninstrumented code (Rust's Mutex, Condvar and Arc), so tsan.supp
#         makes it ignore libfstore's calls into libc, and arrow_testing.c
#         declares the hand-offs of test data that libfstore orders. Races
#         between instrumented accesses (the tests, the C++ binding, callbacks
#         that libfstore calls) are all reported.
#
# Before the tests of a variant, a deliberately broken program
# (sanitizer_canary.c) must be reported, so a variant that stopped reporting
# fails rather than passes.
#
#   fstore_sanitizer_flags VARIANT   compile and link flags of VARIANT
#   fstore_sanitizer_env VARIANT     exports the runtime options of VARIANT
#   fstore_sanitizer_check_runtime VARIANT CC
#                                    fails with a message when CC cannot link VARIANT
#   fstore_sanitizer_canary VARIANT CC LIB_DIR OUT_DIR
#                                    fails unless VARIANT reports the canary
#   fstore_sanitizer_fork_safe CC    whether CC's ASan locks its allocator around
#                                    fork() (GCC >= 13, clang >= 16)
# Needs $root (the repository).

fstore_sanitizer_flags() {
  case $1 in
    asan) echo "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;;
    tsan) echo "-fsanitize=thread -fno-omit-frame-pointer" ;;
    *) echo "sanitizers.sh: unknown variant '$1'" >&2; return 1 ;;
  esac
}

fstore_sanitizer_env() {
  case $1 in
    asan)
      # A report ends the run with a non-zero status; leaks are reported at exit.
      export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
      export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
      ;;
    tsan)
      # Every report is printed; the process then exits with status 66.
      export TSAN_OPTIONS="exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/c/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
      ;;
    *) echo "sanitizers.sh: unknown variant '$1'" >&2; return 1 ;;
  esac
}

fstore_sanitizer_check_runtime() {
  local variant=$1 compiler=$2 tmp flags rc=0
  flags=$(fstore_sanitizer_flags "$variant") || return 1
  tmp=$(mktemp -d)
  printf 'int main(void) { return 0; }\n' > "$tmp/probe.c"
  # shellcheck disable=SC2086 # the flags are words
  if ! "$compiler" $flags -x c "$tmp/probe.c" -o "$tmp/probe" 2> "$tmp/err"; then
    echo "sanitizers.sh: $compiler cannot build the $variant variant ($flags):" >&2
    cat "$tmp/err" >&2
    echo "install the sanitizer runtimes (Debian: apt-get install libasan8 libubsan1 libtsan2," \
      "which come with gcc)" >&2
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}

fstore_sanitizer_fork_safe() {
  local compiler=$1 version major
  version=$("$compiler" --version 2>/dev/null | head -n 1)
  major=$("$compiler" -dumpversion 2>/dev/null | cut -d. -f1)
  [[ $major =~ ^[0-9]+$ ]] || return 1
  if [[ $version == *clang* ]]; then
    [ "$major" -ge 16 ]
  else
    [ "$major" -ge 13 ]
  fi
}

fstore_sanitizer_canary() {
  local variant=$1 compiler=$2 lib_dir=$3 out=$4/sanitizer_canary-$1 flags mode report log
  case $variant in
    asan) mode=leak report="ERROR: LeakSanitizer: detected memory leaks" ;;
    tsan) mode=race report="WARNING: ThreadSanitizer: data race" ;;
    *) echo "sanitizers.sh: unknown variant '$variant'" >&2; return 1 ;;
  esac
  flags=$(fstore_sanitizer_flags "$variant")
  # shellcheck disable=SC2086 # the flags are words
  "$compiler" -std=c99 -Wall -Wextra -Werror -pedantic -g -O1 $flags -I"$root/include" -I"$root/tests/c" \
    "$root/tests/c/sanitizer_canary.c" "$root/tests/c/arrow_testing.c" \
    -L"$lib_dir" -lfstore -Wl,-rpath,"$lib_dir" -lpthread -o "$out" || return 1
  if log=$(fstore_sanitizer_env "$variant" && "$out" "$mode" 2>&1); then
    printf '%s\n' "$log" >&2
    echo "sanitizers.sh: the $variant canary ($mode) ran clean: this variant would not report" >&2
    return 1
  fi
  if ! grep -q "$report" <<< "$log"; then
    printf '%s\n' "$log" >&2
    echo "sanitizers.sh: the $variant canary ($mode) failed without the report '$report'" >&2
    return 1
  fi
  echo "== $variant reports and fails a run: the canary ($mode) was caught"
}
