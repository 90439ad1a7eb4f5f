// libfstore for C++17: RAII handles and exceptions over the C API in fstore.h.
//
// Header-only; include it as <fstore/fstore.hpp> and link the C library
// (CMake: fstore::cpp, pkg-config: fstore).
// Every call delegates to one C function; failures throw fstore::Error, which
// carries the status and the library's message. Nothing throws across the C
// boundary: the compute trampoline catches every exception and reports it
// through fstore_error_set.
//
//   fstore::Store store(fstore::Options().set("cache_dir", "/data/cache"));
//   fstore::Key key{"returns", "AAPL", 19000, 19009, R"({"window": 20})"};
//   fstore::UniqueArrayStream data = store.get_or_compute(key, [](const fstore::Key& k) {
//     return compute_features(k);  // a UniqueArrayStream, or fill an ArrowArrayStream*
//   });
#ifndef FSTORE_HPP
#define FSTORE_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// Quoted, so that the fstore.h beside this file wins: installed, both sit in
// include/fstore/; in the source tree, include/ is on the include path.
#include "fstore.h"

namespace fstore {

/// The status constants of fstore.h, as an enum for switch statements.
enum class Status : fstore_status {
  ok = FSTORE_STATUS_OK,
  invalid_argument = FSTORE_STATUS_INVALID_ARGUMENT,
  not_found = FSTORE_STATUS_NOT_FOUND,
  timeout = FSTORE_STATUS_TIMEOUT,
  cancelled = FSTORE_STATUS_CANCELLED,
  callback_failed = FSTORE_STATUS_CALLBACK_FAILED,
  invalid_data = FSTORE_STATUS_INVALID_DATA,
  io = FSTORE_STATUS_IO,
  database = FSTORE_STATUS_DATABASE,
  corrupt = FSTORE_STATUS_CORRUPT,
  invalid_state = FSTORE_STATUS_INVALID_STATE,
  unavailable = FSTORE_STATUS_UNAVAILABLE,
  internal = FSTORE_STATUS_INTERNAL,
  permission_denied = FSTORE_STATUS_PERMISSION_DENIED,
};

/// A short English name of `status`, e.g. "timeout".
inline const char* status_name(Status status) noexcept {
  return fstore_status_name(static_cast<fstore_status>(status));
}

/// A failed call: its status, the library's message and, for a PostgreSQL
/// error, its SQLSTATE.
class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message, std::string sqlstate = {})
      : std::runtime_error(message), status_(status), sqlstate_(std::move(sqlstate)) {}

  Status status() const noexcept { return status_; }
  /// The raw fstore_status code.
  fstore_status code() const noexcept { return static_cast<fstore_status>(status_); }
  /// The five-character SQLSTATE of the PostgreSQL error behind this one
  /// (e.g. "28P01"), or empty.
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  Status status_;
  std::string sqlstate_;
};

/// The library version, e.g. "0.1.0".
inline std::string version() { return fstore_version(); }

namespace detail {

/// A zero-initialised fstore_error, released on scope exit.
class ErrorSlot {
 public:
  ErrorSlot() noexcept : error_{} {}
  ~ErrorSlot() { fstore_error_release(&error_); }
  ErrorSlot(const ErrorSlot&) = delete;
  ErrorSlot& operator=(const ErrorSlot&) = delete;

  fstore_error* get() noexcept { return &error_; }

  [[noreturn]] void raise(fstore_status status) const {
    const char* message = error_.message;
    throw Error(static_cast<Status>(status),
                message != nullptr && *message != '\0' ? std::string(message)
                                                       : std::string(fstore_status_name(status)),
                std::string(error_.sqlstate));
  }

 private:
  fstore_error error_;
};

/// Throws unless `status` is OK (or is `allowed`, which is returned).
inline fstore_status check(fstore_status status, ErrorSlot& error,
                           fstore_status allowed = FSTORE_STATUS_OK) {
  if (status != FSTORE_STATUS_OK && status != allowed) error.raise(status);
  return status;
}

/// C strings cannot hold NUL bytes; refuse rather than silently truncate.
inline const char* c_str(const std::string& value, const char* what) {
  if (value.find('\0') != std::string::npos) {
    throw Error(Status::invalid_argument, std::string(what) + " contains a NUL byte");
  }
  return value.c_str();
}

}  // namespace detail

/// Owns an ArrowArrayStream and releases it on destruction (as nanoarrow's
/// UniqueArrayStream). Move-only; a moved-from stream is released (empty).
class UniqueArrayStream {
 public:
  UniqueArrayStream() noexcept { std::memset(&stream_, 0, sizeof stream_); }

  /// Takes over `*source`, leaving it released.
  explicit UniqueArrayStream(struct ArrowArrayStream* source) noexcept : UniqueArrayStream() {
    if (source != nullptr) {
      std::memcpy(&stream_, source, sizeof stream_);
      source->release = nullptr;
    }
  }

  UniqueArrayStream(UniqueArrayStream&& other) noexcept : UniqueArrayStream(other.get()) {}

  UniqueArrayStream& operator=(UniqueArrayStream&& other) noexcept {
    if (this != &other) {
      reset();
      other.move_to(&stream_);
    }
    return *this;
  }

  UniqueArrayStream(const UniqueArrayStream&) = delete;
  UniqueArrayStream& operator=(const UniqueArrayStream&) = delete;

  ~UniqueArrayStream() { reset(); }

  /// The stream, for reading or for filling (when empty).
  struct ArrowArrayStream* get() noexcept { return &stream_; }
  const struct ArrowArrayStream* get() const noexcept { return &stream_; }
  struct ArrowArrayStream* operator->() noexcept { return &stream_; }

  /// Whether a stream is held (its release callback is set).
  bool valid() const noexcept { return stream_.release != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  /// Releases the held stream, if any.
  void reset() noexcept {
    if (stream_.release != nullptr) stream_.release(&stream_);
    std::memset(&stream_, 0, sizeof stream_);
  }

  /// Moves the held stream into `*destination` (which must be released or
  /// uninitialised) and leaves this one empty.
  void move_to(struct ArrowArrayStream* destination) noexcept {
    std::memcpy(destination, &stream_, sizeof stream_);
    std::memset(&stream_, 0, sizeof stream_);
  }

 private:
  struct ArrowArrayStream stream_;
};

/// The advisory lock key of `symbol` (computed by the library).
inline std::int64_t lock_key(const std::string& symbol) {
  detail::ErrorSlot error;
  std::int64_t out = 0;
  detail::check(fstore_lock_key(detail::c_str(symbol, "symbol"), &out, error.get()), error);
  return out;
}

/// The five parts of a cache key; see fstore_key. An empty config means "{}".
struct Key {
  std::string feature_set;
  std::string symbol;
  std::int32_t start_date = 0;  // days since 1970-01-01
  std::int32_t end_date = 0;
  std::string config;

  /// A view for the C API, valid while this Key lives and is not modified.
  fstore_key to_c() const {
    fstore_key key{};  // zeroes the reserved space
    key.feature_set = detail::c_str(feature_set, "key.feature_set");
    key.symbol = detail::c_str(symbol, "key.symbol");
    key.start_date = start_date;
    key.end_date = end_date;
    key.config = detail::c_str(config, "key.config");
    return key;
  }

  static Key from_c(const fstore_key& key) {
    auto text = [](const char* s) { return s != nullptr ? std::string(s) : std::string(); };
    return Key{text(key.feature_set), text(key.symbol), key.start_date, key.end_date, text(key.config)};
  }

  friend bool operator==(const Key& a, const Key& b) {
    return a.feature_set == b.feature_set && a.symbol == b.symbol && a.start_date == b.start_date &&
           a.end_date == b.end_date && a.config == b.config;
  }
  friend bool operator!=(const Key& a, const Key& b) { return !(a == b); }
};

/// What Store::scan reads; see fstore_scan_request for the rules.
struct ScanRequest {
  std::string feature_set;
  /// nullopt: every symbol (an empty list is refused).
  std::optional<std::vector<std::string>> symbols;
  /// The window (days since 1970-01-01, both included); an entry is read
  /// when its whole range lies within it.
  std::int32_t start_date = 0;
  std::int32_t end_date = 0;
  std::string config;
  /// Feature columns to return, in this order; empty returns all.
  std::vector<std::string> columns;
};

/// What Store::scan returns: the rows (key columns fstore_symbol,
/// fstore_start_date, fstore_end_date in front), and the entries the
/// manifest lists whose file is missing or fails verification (feature_set,
/// symbol, start_date, end_date, config, reason), one row each.
struct Scan {
  UniqueArrayStream data;
  UniqueArrayStream missing;
};

/// Counters since the store was opened; see fstore_stats.
using Stats = fstore_stats;
/// PostgreSQL connection pool figures; see fstore_pool_stats.
using PoolStats = fstore_pool_stats;
/// Advisory locks in the manifest database; see fstore_lock_stats.
using LockStats = fstore_lock_stats;
/// What Store::maintain removed (or would have); see fstore_maintain_report.
using MaintainReport = fstore_maintain_report;
/// What migrate_manifest did; see fstore_migration_report.
using MigrationReport = fstore_migration_report;

/// What Store::maintain removes; see fstore_maintain_options.
struct MaintainOptions {
  /// Remove entries created longer ago than this; nullopt keeps them all.
  std::optional<std::chrono::milliseconds> max_age;
  /// Never remove a file modified more recently than this (the C API's
  /// default, used by maintain() without options, is one hour).
  std::chrono::milliseconds grace{std::chrono::hours(1)};
  /// Count, but remove nothing.
  bool dry_run = false;
};

/// Options for opening a store, set by name (see fstore_options_set).
class Options {
 public:
  Options() : options_(fstore_options_new()) {
    if (!options_) throw std::bad_alloc();
  }

  /// Sets option `key` to `value`; throws Error (invalid_argument) for an
  /// unknown key or a bad value. Chainable.
  Options& set(const std::string& key, const std::string& value) & {
    detail::ErrorSlot error;
    detail::check(fstore_options_set(options_.get(), detail::c_str(key, "key"), detail::c_str(value, "value"),
                                     error.get()),
                  error);
    return *this;
  }
  Options&& set(const std::string& key, const std::string& value) && { return std::move(set(key, value)); }

  const fstore_options* get() const noexcept { return options_.get(); }

 private:
  struct Deleter {
    void operator()(fstore_options* options) const noexcept { fstore_options_free(&options); }
  };
  std::unique_ptr<fstore_options, Deleter> options_;
};

/// Per-call settings: projection, wait bound, cancellation. Setters must not
/// race with a call that uses the request; cancel() may come from any thread.
class Request {
 public:
  Request() : request_(fstore_request_new()), cancelled_(std::make_unique<std::atomic<bool>>(false)) {
    if (!request_) throw std::bad_alloc();
  }

  /// Returns only `columns`, in that order; empty returns all.
  Request& columns(const std::vector<std::string>& columns) & {
    std::vector<const char*> names;
    names.reserve(columns.size());
    for (const auto& c : columns) names.push_back(detail::c_str(c, "column name"));
    detail::ErrorSlot error;
    detail::check(fstore_request_set_columns(request_.get(), names.data(), names.size(), error.get()), error);
    return *this;
  }
  Request&& columns(const std::vector<std::string>& c) && { return std::move(columns(c)); }

  /// Waits give up after `timeout` (zero: do not wait).
  Request& timeout(std::chrono::milliseconds timeout) & {
    detail::ErrorSlot error;
    detail::check(fstore_request_set_timeout_ms(request_.get(), static_cast<std::int64_t>(timeout.count()),
                                                error.get()),
                  error);
    return *this;
  }
  Request&& timeout(std::chrono::milliseconds t) && { return std::move(timeout(t)); }

  /// Back to the store's wait.timeout_ms.
  Request& default_timeout() & {
    detail::ErrorSlot error;
    detail::check(fstore_request_set_timeout_ms(request_.get(), -1, error.get()), error);
    return *this;
  }

  /// Cancels every wait of calls using this request, now and later.
  /// Thread-safe; a running compute is not interrupted, but if it then
  /// fails, its failure is this cancellation: the call throws
  /// Error(cancelled), and a call waiting for the same entry computes it.
  void cancel() const noexcept {
    cancelled_->store(true);
    fstore_request_cancel(request_.get());
  }

  /// Whether cancel() was called.
  bool cancelled() const noexcept { return cancelled_->load(); }

  const fstore_request* get() const noexcept { return request_.get(); }

 private:
  struct Deleter {
    void operator()(fstore_request* request) const noexcept { fstore_request_free(&request); }
  };
  std::unique_ptr<fstore_request, Deleter> request_;
  // The C API does not tell whether a request was cancelled.
  std::unique_ptr<std::atomic<bool>> cancelled_;
};

namespace detail {

template <class F>
struct ComputeCall {
  F* callable;
  const Request* request;
};

// Reports a failed compute. Once the call's request is cancelled, a failure
// is the caller giving up, not the compute failing: CANCELLED hands the
// compute over to the calls waiting for it instead of failing them all.
template <class F>
fstore_status compute_failed(const ComputeCall<F>& call, fstore_error* error, fstore_status status,
                             const char* message) noexcept {
  if (call.request != nullptr && call.request->cancelled() && status != FSTORE_STATUS_TIMEOUT) {
    status = FSTORE_STATUS_CANCELLED;
  } else if (status == FSTORE_STATUS_OK) {
    status = FSTORE_STATUS_CALLBACK_FAILED;
  }
  fstore_error_set(error, status, message);
  return status;
}

// Calls the user's callable; every exception becomes a status and a message.
// An Error the callable throws keeps its status: Error(cancelled) (or
// timeout) says that its caller gave up.
template <class F>
fstore_status compute_trampoline(void* userdata, const fstore_key* c_key, struct ArrowArrayStream* out,
                                 fstore_error* error) noexcept {
  const ComputeCall<F>& call = *static_cast<ComputeCall<F>*>(userdata);
  try {
    F& callable = *call.callable;
    const Key key = Key::from_c(*c_key);
    if constexpr (std::is_invocable_r_v<UniqueArrayStream, F&, const Key&>) {
      UniqueArrayStream result = callable(key);
      if (!result.valid()) {
        return compute_failed(call, error, FSTORE_STATUS_CALLBACK_FAILED, "the compute callable returned an empty stream");
      }
      result.move_to(out);
    } else {
      static_assert(std::is_invocable_v<F&, const Key&, struct ArrowArrayStream*>,
                    "the compute callable takes (const fstore::Key&) and returns a UniqueArrayStream, or "
                    "takes (const fstore::Key&, ArrowArrayStream* out) and fills out");
      callable(key, out);
    }
    return FSTORE_STATUS_OK;
  } catch (const Error& e) {
    return compute_failed(call, error, e.code(), e.what());
  } catch (const std::exception& e) {
    return compute_failed(call, error, FSTORE_STATUS_CALLBACK_FAILED, e.what());
  } catch (...) {
    return compute_failed(call, error, FSTORE_STATUS_CALLBACK_FAILED, "the compute callable threw a non-standard exception");
  }
}

}  // namespace detail

/// An open store. Thread-safe: share one between threads (by reference).
/// Move-only; closed (manifest flushed) on destruction.
class Store {
 public:
  /// Opens the store that `options` describe.
  explicit Store(const Options& options) : store_(open(options.get())) {}
  /// Opens a store with every option at its default.
  Store() : store_(open(nullptr)) {}

  /// Closes now (as the destructor would); the store is then empty.
  void close() noexcept { store_.reset(); }
  bool is_open() const noexcept { return store_ != nullptr; }

  /// The entry of `key`, or nullopt when there is none. Never computes.
  std::optional<UniqueArrayStream> get(const Key& key, const Request* request = nullptr) const {
    const fstore_key c_key = key.to_c();
    UniqueArrayStream out;
    detail::ErrorSlot error;
    if (detail::check(fstore_store_get(store_.get(), &c_key, request ? request->get() : nullptr, out.get(),
                                       error.get()),
                      error, FSTORE_STATUS_NOT_FOUND) == FSTORE_STATUS_NOT_FOUND) {
      return std::nullopt;
    }
    return std::optional<UniqueArrayStream>(std::move(out));
  }
  std::optional<UniqueArrayStream> get(const Key& key, const Request& request) const { return get(key, &request); }

  /// The entry of `key`, computing it first with `compute` if there is none
  /// (once across the threads and processes sharing the cache). `compute` is
  /// either `UniqueArrayStream(const Key&)` or `void(const Key&,
  /// ArrowArrayStream* out)`; it runs on this thread, and an exception from it
  /// becomes Error(callback_failed) with the exception's text, unless
  /// `request` was cancelled by then (see Request::cancel).
  template <class F>
  UniqueArrayStream get_or_compute(const Key& key, F&& compute, const Request* request = nullptr) const {
    using Callable = std::remove_reference_t<F>;
    const fstore_key c_key = key.to_c();
    detail::ComputeCall<Callable> call{&compute, request};
    UniqueArrayStream out;
    detail::ErrorSlot error;
    detail::check(fstore_store_get_or_compute(store_.get(), &c_key, request ? request->get() : nullptr,
                                              &detail::compute_trampoline<Callable>, &call, out.get(),
                                              error.get()),
                  error);
    return out;
  }
  template <class F>
  UniqueArrayStream get_or_compute(const Key& key, F&& compute, const Request& request) const {
    return get_or_compute(key, std::forward<F>(compute), &request);
  }

  /// Stores `data` as the entry of `key`, replacing any; takes the stream.
  void put(const Key& key, UniqueArrayStream data) const {
    const fstore_key c_key = key.to_c();
    detail::ErrorSlot error;
    detail::check(fstore_store_put(store_.get(), &c_key, data.get(), error.get()), error);
  }

  /// Removes the entry of `key`; false if there was none.
  bool invalidate(const Key& key) const {
    const fstore_key c_key = key.to_c();
    detail::ErrorSlot error;
    return detail::check(fstore_store_invalidate(store_.get(), &c_key, error.get()), error,
                         FSTORE_STATUS_NOT_FOUND) == FSTORE_STATUS_OK;
  }

  /// Whether a complete entry of `key` exists.
  bool contains(const Key& key) const {
    const fstore_key c_key = key.to_c();
    bool out = false;
    detail::ErrorSlot error;
    detail::check(fstore_store_contains(store_.get(), &c_key, &out, error.get()), error);
    return out;
  }

  Stats stats() const {
    Stats out{};
    detail::ErrorSlot error;
    detail::check(fstore_store_stats(store_.get(), &out, sizeof out, error.get()), error);
    return out;
  }

  /// The manifest, one row per entry.
  UniqueArrayStream list() const {
    UniqueArrayStream out;
    detail::ErrorSlot error;
    detail::check(fstore_store_list(store_.get(), out.get(), error.get()), error);
    return out;
  }

  /// Reads many entries at once, never computing; see fstore_store_scan.
  Scan scan(const ScanRequest& request) const {
    auto c_strings = [](const std::vector<std::string>& values, const char* what) {
      std::vector<const char*> out;
      out.reserve(values.size());
      for (const auto& v : values) out.push_back(detail::c_str(v, what));
      return out;
    };
    std::vector<const char*> symbols;
    if (request.symbols) symbols = c_strings(*request.symbols, "symbol");
    std::vector<const char*> columns = c_strings(request.columns, "column name");
    static const char* const no_symbols[1] = {nullptr};
    fstore_scan_request c_scan;
    c_scan.feature_set = detail::c_str(request.feature_set, "feature_set");
    // A present but empty list must stay non-NULL, so that the library refuses it.
    c_scan.symbols = request.symbols ? (symbols.empty() ? no_symbols : symbols.data()) : nullptr;
    c_scan.symbol_count = symbols.size();
    c_scan.start_date = request.start_date;
    c_scan.end_date = request.end_date;
    c_scan.config = detail::c_str(request.config, "config");
    c_scan.columns = columns.data();
    c_scan.column_count = columns.size();
    Scan out;
    detail::ErrorSlot error;
    detail::check(fstore_store_scan(store_.get(), &c_scan, out.data.get(), out.missing.get(), error.get()), error);
    return out;
  }

  /// Waits until the manifest records every entry published so far.
  void flush() const {
    detail::ErrorSlot error;
    detail::check(fstore_store_flush(store_.get(), error.get()), error);
  }

  /// The manifest backend in use, "postgres" or "duckdb"; empty for a closed store.
  std::string manifest_backend() const {
    const char* name = fstore_store_manifest_backend(store_.get());
    return name != nullptr ? std::string(name) : std::string();
  }

  /// Warnings from opening the store (e.g. a fallback from PostgreSQL to
  /// the embedded manifest, and why), one per element.
  std::vector<std::string> warnings() const {
    std::vector<std::string> out;
    const char* text = fstore_store_warnings(store_.get());
    if (text == nullptr) return out;
    std::string_view rest(text);
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      out.emplace_back(rest.substr(0, end));
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
    return out;
  }

  /// The store's metrics in the Prometheus text exposition format (0.0.4),
  /// for a `/metrics` endpoint the host program serves.
  std::string metrics() const {
    char* text = nullptr;
    detail::ErrorSlot error;
    detail::check(fstore_store_metrics(store_.get(), &text, error.get()), error);
    std::string out(text);
    fstore_string_free(&text);
    return out;
  }

  /// The PostgreSQL pool's figures; nullopt when the store does not use PostgreSQL.
  std::optional<PoolStats> pool_stats() const {
    PoolStats out{};
    detail::ErrorSlot error;
    if (detail::check(fstore_store_pool_stats(store_.get(), &out, sizeof out, error.get()), error, FSTORE_STATUS_NOT_FOUND) ==
        FSTORE_STATUS_NOT_FOUND) {
      return std::nullopt;
    }
    return out;
  }

  /// Advisory-lock figures; nullopt when the store does not use PostgreSQL.
  std::optional<LockStats> lock_stats() const {
    LockStats out{};
    detail::ErrorSlot error;
    if (detail::check(fstore_store_lock_stats(store_.get(), &out, sizeof out, error.get()), error, FSTORE_STATUS_NOT_FOUND) ==
        FSTORE_STATUS_NOT_FOUND) {
      return std::nullopt;
    }
    return out;
  }

  /// Entries, rows, bytes and age per feature set and symbol.
  UniqueArrayStream summary() const {
    UniqueArrayStream out;
    detail::ErrorSlot error;
    detail::check(fstore_store_summary(store_.get(), out.get(), error.get()), error);
    return out;
  }

  /// Removes stale temporary files, files no manifest row points to, rows
  /// whose file is gone, and nothing else (the library's defaults).
  MaintainReport maintain() const { return maintain_with(nullptr); }

  /// As maintain(), and also expires entries older than `options.max_age`.
  MaintainReport maintain(const MaintainOptions& options) const {
    fstore_maintain_options c_options;
    c_options.max_age_ms = options.max_age ? static_cast<std::int64_t>(options.max_age->count()) : -1;
    c_options.grace_ms = static_cast<std::int64_t>(options.grace.count());
    c_options.dry_run = options.dry_run;
    return maintain_with(&c_options);
  }

  const fstore_store* get() const noexcept { return store_.get(); }

 private:
  struct Deleter {
    void operator()(fstore_store* store) const noexcept { fstore_store_close(&store); }
  };

  MaintainReport maintain_with(const fstore_maintain_options* options) const {
    MaintainReport out{};
    detail::ErrorSlot error;
    detail::check(fstore_store_maintain(store_.get(), options, sizeof(fstore_maintain_options), &out, sizeof out, error.get()), error);
    return out;
  }

  static fstore_store* open(const fstore_options* options) {
    fstore_store* store = nullptr;
    detail::ErrorSlot error;
    detail::check(fstore_store_open(options, &store, error.get()), error);
    return store;
  }

  std::unique_ptr<fstore_store, Deleter> store_;
};

/// A log level of the library, in order of detail.
enum class LogLevel : fstore_log_level {
  off = FSTORE_LOG_OFF,
  error = FSTORE_LOG_ERROR,
  warn = FSTORE_LOG_WARN,
  info = FSTORE_LOG_INFO,
  debug = FSTORE_LOG_DEBUG,
  trace = FSTORE_LOG_TRACE,
};

/// Receives one log line of the library: its level and its text (valid
/// during the call). Called on whichever thread logs, possibly several at
/// once. An exception it throws is swallowed: it cannot cross the C API.
using LogHandler = std::function<void(LogLevel, std::string_view)>;

namespace detail {

inline void log_trampoline(void* userdata, fstore_log_level level, const char* message) noexcept {
  try {
    (*static_cast<const LogHandler*>(userdata))(static_cast<LogLevel>(level), message);
  } catch (...) {
    // Logging must never fail the call that logged.
  }
}

}  // namespace detail

/// Sends the library's log lines to `handler` (e.g. glog or spdlog) instead
/// of stderr; an empty handler sends them to stderr again. Process-wide.
///
///   fstore::set_log_handler([](fstore::LogLevel level, std::string_view line) {
///     LOG(WARNING) << "libfstore: " << line;
///   });
///
/// Another thread may still be inside the previous handler when this
/// returns, so a replaced handler is never destroyed: set one at start-up,
/// not per call.
inline void set_log_handler(LogHandler handler) {
  static std::mutex setting;  // keeps two setters from interleaving their C calls
  // Every handler ever set, kept until exit (see above); the list itself is
  // never destroyed, so a line logged during static destruction is safe.
  static auto* kept = new std::vector<std::unique_ptr<LogHandler>>();
  std::lock_guard<std::mutex> guard(setting);
  if (!handler) {
    fstore_log_set_callback(nullptr, nullptr);
    return;
  }
  kept->push_back(std::make_unique<LogHandler>(std::move(handler)));
  fstore_log_set_callback(&detail::log_trampoline, kept->back().get());
}

/// Logs only lines at `level` or more severe (LogLevel::off: none). The
/// default comes from FSTORE_LOG, else warn.
inline void set_log_level(LogLevel level) {
  detail::ErrorSlot error;
  detail::check(fstore_log_set_level(static_cast<fstore_log_level>(level), error.get()), error);
}

/// Creates or upgrades libfstore's PostgreSQL schema (for workers that run
/// with postgres.auto_migrate=false).
inline void migrate_schema(const Options& options) {
  detail::ErrorSlot error;
  detail::check(fstore_migrate_schema(options.get(), error.get()), error);
}

/// Copies the embedded manifest of the options' cache directory into
/// PostgreSQL. Idempotent; safe while workers run.
inline MigrationReport migrate_manifest(const Options& options) {
  MigrationReport out{};
  detail::ErrorSlot error;
  detail::check(fstore_migrate_manifest(options.get(), &out, sizeof out, error.get()), error);
  return out;
}

}  // namespace fstore

#endif  // FSTORE_HPP
