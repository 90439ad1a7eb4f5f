// Tests of the C++ binding (fstore.hpp) against the real library: real files,
// real threads. Arrow streams come from the C tests' helper (arrow_testing.h).
#include <fstore/fstore.hpp>

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "arrow_testing.h"
#include "lock_key_vectors.h"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A fresh cache directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/fstore-cpp-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

fstore::Options options_for(const TempDir& dir) {
  return fstore::Options().set("cache_dir", dir.path()).set("wait.timeout_ms", "60000").set("manifest", "duckdb");
}

// `rows` rows of date (date32) and close (float64) derived from `seed`.
fstore::UniqueArrayStream sample(int rows, double seed, int batches = 2) {
  std::vector<std::int32_t> dates(static_cast<size_t>(rows));
  std::vector<double> close(static_cast<size_t>(rows));
  for (int i = 0; i < rows; i++) {
    dates[static_cast<size_t>(i)] = 19000 + i;
    close[static_cast<size_t>(i)] = seed + i;
  }
  at_column columns[2] = {{"date", AT_DATE32, dates.data()}, {"close", AT_FLOAT64, close.data()}};
  fstore::UniqueArrayStream out;
  if (at_stream_make(out.get(), columns, 2, rows, batches, AT_STREAM_OK) != 0) throw std::bad_alloc();
  return out;
}

// What a stream held: column names in order, and the close values.
struct Read {
  std::vector<std::string> names;
  std::vector<double> close;
  std::int64_t rows = 0;
};

Read read_all(fstore::UniqueArrayStream stream) {
  at_table table;
  char why[256];
  int rc = at_stream_read(stream.get(), &table, why, sizeof why);
  EXPECT_FALSE(stream.valid());  // the reader released it
  Read out;
  if (rc != 0) {
    at_table_free(&table);
    throw std::runtime_error(why);
  }
  out.rows = table.n_rows;
  for (int c = 0; c < table.n_columns; c++) out.names.emplace_back(table.columns[c].name);
  if (const at_column_data* close = at_table_column(&table, "close")) {
    out.close.assign(close->f64, close->f64 + close->length);
  }
  at_table_free(&table);
  return out;
}

std::vector<double> expected_close(int rows, double seed) {
  std::vector<double> out;
  for (int i = 0; i < rows; i++) out.push_back(seed + i);
  return out;
}

const fstore::Key kKey{"returns", "AAPL", 19000, 19009, R"({"window": 20})"};

// Runs `body`, expecting fstore::Error with `status` and `needle` in its text.
template <class Body>
void expect_error(Body body, fstore::Status status, const std::string& needle) {
  try {
    body();
    ADD_FAILURE() << "no exception; expected " << fstore::status_name(status);
  } catch (const fstore::Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Basics, VersionStatusNamesAndLockKeys) {
  EXPECT_FALSE(fstore::version().empty());
  EXPECT_STREQ(fstore::status_name(fstore::Status::timeout), "timeout");
  const char* path = std::getenv("FSTORE_LOCK_KEY_VECTORS");
  ASSERT_NE(path, nullptr) << "FSTORE_LOCK_KEY_VECTORS is not set";
  lkv_vector* vectors = nullptr;
  char why[256];
  int n = lkv_read(path, &vectors, why, sizeof why);
  ASSERT_GE(n, 4) << why;
  for (int i = 0; i < n; i++) EXPECT_EQ(fstore::lock_key(vectors[i].symbol), vectors[i].key) << vectors[i].symbol;
  lkv_free(vectors, n);
  expect_error([] { fstore::lock_key(""); }, fstore::Status::invalid_argument, "symbol is empty");
  expect_error([] { fstore::lock_key(std::string("AA\0PL", 5)); }, fstore::Status::invalid_argument,
               "contains a NUL byte");
}

TEST(Options, ErrorsCarryStatusAndMessage) {
  fstore::Options options;
  expect_error([&] { options.set("cache_dri", "/x"); }, fstore::Status::invalid_argument,
               "unknown option 'cache_dri'");
  expect_error([&] { options.set("lock.granularity", "row"); }, fstore::Status::invalid_argument,
               "lock.granularity");
  try {
    options.set("wait.timeout_ms", "soon");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {  // fstore::Error is a std::runtime_error
    EXPECT_NE(std::string(e.what()).find("wait.timeout_ms"), std::string::npos);
  }
  EXPECT_NO_THROW(options.set("lock.granularity", "entry").set("verify_checksums", "false"));
}

TEST(Store, RaiiClosesAndMoves) {
  TempDir dir;
  {
    fstore::Store store(options_for(dir));
    EXPECT_TRUE(store.is_open());
    EXPECT_EQ(store.manifest_backend(), "duckdb");
    store.put(kKey, sample(10, 1.0));
    fstore::Store moved(std::move(store));
    EXPECT_FALSE(store.is_open());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    EXPECT_EQ(store.manifest_backend(), "");
    expect_error([&] { store.contains(kKey); }, fstore::Status::invalid_argument, "store is NULL");
    EXPECT_TRUE(moved.contains(kKey));
  }  // closed here: the manifest is flushed
  fstore::Store reopened(options_for(dir));
  auto list = read_all(reopened.list());
  EXPECT_EQ(list.rows, 1);
  reopened.close();
  EXPECT_FALSE(reopened.is_open());
  reopened.close();  // twice is fine
}

TEST(Store, OpenFailureThrowsIo) {
  TempDir dir;
  std::string file = dir.path() + "/plain-file";
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  expect_error([&] { fstore::Store store(fstore::Options().set("cache_dir", file + "/cache")); },
               fstore::Status::io, "plain-file");
}

TEST(Store, GetOrComputeMissThenHit) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  EXPECT_EQ(store.get(kKey), std::nullopt);
  int calls = 0;
  auto compute = [&](const fstore::Key& key) {
    calls++;
    EXPECT_EQ(key, kKey);
    return sample(10, 5.0);
  };
  EXPECT_EQ(read_all(store.get_or_compute(kKey, compute)).close, expected_close(10, 5.0));
  EXPECT_EQ(read_all(store.get_or_compute(kKey, compute)).close, expected_close(10, 5.0));
  EXPECT_EQ(calls, 1);
  auto got = store.get(kKey);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(read_all(std::move(*got)).close, expected_close(10, 5.0));
  fstore::Stats stats = store.stats();
  EXPECT_EQ(stats.computes, 1u);
  EXPECT_GE(stats.hits, 2u);
}

TEST(Store, MetricsCountTheCallsMade) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  auto compute = [&](const fstore::Key&) { return sample(10, 5.0); };
  EXPECT_EQ(store.get(kKey), std::nullopt);             // a miss
  read_all(store.get_or_compute(kKey, compute));        // a miss and a compute
  read_all(store.get_or_compute(kKey, compute));        // a hit
  ASSERT_TRUE(store.get(kKey).has_value());             // a hit
  const std::string text = store.metrics();
  for (const char* line : {"featurestore_hits_total{symbol=\"AAPL\"} 2\n",
                           "featurestore_misses_total{symbol=\"AAPL\"} 2\n",
                           "featurestore_hit_ratio 0.5\n",
                           "featurestore_computes_total{feature_set=\"returns\"} 1\n",
                           "featurestore_compute_failures_total{feature_set=\"returns\"} 0\n",
                           "featurestore_get_seconds_count{feature_set=\"returns\"} 4\n",
                           "featurestore_compute_seconds_count{feature_set=\"returns\"} 1\n",
                           "# TYPE featurestore_get_seconds histogram\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
  EXPECT_NE(text.find("featurestore_info{version=\"" + fstore::version() + "\",backend=\"duckdb\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(Store, OutParameterCallableAndProjection) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  fstore::Request request;
  request.columns({"close", "date"});
  auto data = store.get_or_compute(
      kKey, [](const fstore::Key&, ArrowArrayStream* out) { sample(6, 2.0).move_to(out); }, request);
  Read read = read_all(std::move(data));
  EXPECT_EQ(read.names, (std::vector<std::string>{"close", "date"}));
  EXPECT_EQ(read.close, expected_close(6, 2.0));
  request.columns({"nope"});
  expect_error([&] { store.get(kKey, request); }, fstore::Status::invalid_argument, "unknown column 'nope'");
  request.columns({});
  EXPECT_EQ(read_all(std::move(*store.get(kKey, request))).names, (std::vector<std::string>{"date", "close"}));
}

TEST(Store, PutContainsInvalidateList) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  fstore::Key other = kKey;
  other.symbol = "MSFT";
  store.put(kKey, sample(4, 1.0));
  store.put(other, sample(4, 2.0));
  EXPECT_TRUE(store.contains(kKey));
  store.flush();
  EXPECT_EQ(read_all(store.list()).rows, 2);
  EXPECT_TRUE(store.invalidate(kKey));
  EXPECT_FALSE(store.invalidate(kKey));
  EXPECT_FALSE(store.contains(kKey));
  EXPECT_EQ(read_all(store.list()).rows, 1);
  // A bad key throws with the library's message; the store goes on.
  fstore::Key bad = kKey;
  bad.end_date = bad.start_date - 1;
  expect_error([&] { store.put(bad, sample(4, 1.0)); }, fstore::Status::invalid_argument, "is before start_date");
  bad = kKey;
  bad.config = R"({"a": 1, "a": 2})";
  expect_error([&] { store.contains(bad); }, fstore::Status::invalid_argument, "duplicate member name");
  bad = kKey;
  bad.symbol = std::string("AA\0PL", 5);
  expect_error([&] { store.get(bad); }, fstore::Status::invalid_argument, "key.symbol contains a NUL byte");
  EXPECT_TRUE(store.contains(other));
  EXPECT_EQ(at_live_objects(), 0);
}

TEST(Store, ScanReturnsKeyColumnsAndReportsMissingEntries) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  fstore::Key msft = kKey;
  msft.symbol = "MSFT";
  store.put(msft, sample(4, 2.0));
  store.put(kKey, sample(4, 1.0));
  fstore::ScanRequest request;
  request.feature_set = "returns";
  request.start_date = 19000;
  request.end_date = 19009;
  request.config = R"({"window":20.0})";
  fstore::Scan scan = store.scan(request);
  Read rows = read_all(std::move(scan.data));
  EXPECT_EQ(rows.names, (std::vector<std::string>{"fstore_symbol", "fstore_start_date", "fstore_end_date", "date", "close"}));
  // AAPL's entry first (ordered by symbol), then MSFT's.
  std::vector<double> close = expected_close(4, 1.0);
  for (double v : expected_close(4, 2.0)) close.push_back(v);
  EXPECT_EQ(rows.close, close);
  EXPECT_EQ(read_all(std::move(scan.missing)).rows, 0);

  // A deleted file is reported with its key, not dropped.
  store.flush();
  at_table listed;
  char why[256];
  fstore::UniqueArrayStream list = store.list();
  ASSERT_EQ(at_stream_read(list.get(), &listed, why, sizeof why), 0) << why;
  for (std::int64_t r = 0; r < listed.n_rows; r++) {
    if (std::string(at_table_column(&listed, "symbol")->str[r]) == "MSFT") {
      fs::remove(fs::path(dir.path()) / at_table_column(&listed, "path")->str[r]);
    }
  }
  at_table_free(&listed);
  request.columns = {"close"};
  scan = store.scan(request);
  rows = read_all(std::move(scan.data));
  EXPECT_EQ(rows.names, (std::vector<std::string>{"fstore_symbol", "fstore_start_date", "fstore_end_date", "close"}));
  EXPECT_EQ(rows.close, expected_close(4, 1.0));
  at_table missing;
  ASSERT_EQ(at_stream_read(scan.missing.get(), &missing, why, sizeof why), 0) << why;
  ASSERT_EQ(missing.n_rows, 1);
  EXPECT_STREQ(at_table_column(&missing, "symbol")->str[0], "MSFT");
  EXPECT_STREQ(at_table_column(&missing, "reason")->str[0], "its file is missing");
  at_table_free(&missing);

  // Hostile requests throw with the library's status and message.
  request.symbols = std::vector<std::string>{};
  expect_error([&] { store.scan(request); }, fstore::Status::invalid_argument, "the symbol list is empty");
  request.symbols = std::vector<std::string>{"AAPL"};
  request.columns = {"nope"};
  expect_error([&] { store.scan(request); }, fstore::Status::invalid_argument, "unknown column 'nope'");
  request.columns = {};
  request.end_date = 18000;
  expect_error([&] { store.scan(request); }, fstore::Status::invalid_argument, "the window is inverted");
  EXPECT_EQ(at_live_objects(), 0);
}

TEST(Store, ThrowingCallableBecomesCallbackFailed) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  expect_error(
      [&] {
        store.get_or_compute(kKey, [](const fstore::Key& key) -> fstore::UniqueArrayStream {
          throw std::runtime_error("no quotes for " + key.symbol + " today");
        });
      },
      fstore::Status::callback_failed, "no quotes for AAPL today");
  expect_error([&] { store.get_or_compute(kKey, [](const fstore::Key&) -> fstore::UniqueArrayStream { throw 42; }); },
               fstore::Status::callback_failed, "non-standard exception");
  expect_error([&] { store.get_or_compute(kKey, [](const fstore::Key&) { return fstore::UniqueArrayStream(); }); },
               fstore::Status::callback_failed, "empty stream");
  // A callable that filled the stream and then threw: the library releases it.
  expect_error(
      [&] {
        store.get_or_compute(kKey, [](const fstore::Key&, ArrowArrayStream* out) {
          sample(3, 1.0).move_to(out);
          throw std::logic_error("changed my mind");
        });
      },
      fstore::Status::callback_failed, "changed my mind");
  EXPECT_EQ(at_live_objects(), 0);
  EXPECT_FALSE(store.contains(kKey));
  EXPECT_EQ(store.stats().compute_failures, 4u);
  // The next call computes again and succeeds.
  EXPECT_EQ(read_all(store.get_or_compute(kKey, [](const fstore::Key&) { return sample(3, 9.0); })).close,
            expected_close(3, 9.0));
}

TEST(Store, ThreadsSharingOneKeyComputeOnce) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  std::atomic<int> calls{0};
  constexpr int kThreads = 8;
  std::vector<std::vector<double>> results(kThreads);
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      try {
        results[static_cast<size_t>(t)] = read_all(store.get_or_compute(kKey, [&](const fstore::Key&) {
                                                     calls++;
                                                     std::this_thread::sleep_for(200ms);
                                                     return sample(12, 3.0);
                                                   })).close;
      } catch (const std::exception& e) {
        failures[static_cast<size_t>(t)] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(calls.load(), 1);
  for (int t = 0; t < kThreads; t++) {
    EXPECT_EQ(failures[static_cast<size_t>(t)], "");
    EXPECT_EQ(results[static_cast<size_t>(t)], expected_close(12, 3.0));
  }
  EXPECT_EQ(store.stats().computes, 1u);
}

TEST(Store, CancelAndTimeoutEndAWait) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  std::atomic<bool> started{false};
  std::string leader_failure;
  std::thread leader([&] {
    try {
      store.get_or_compute(kKey, [&](const fstore::Key&) {
        started = true;
        std::this_thread::sleep_for(1500ms);
        return sample(5, 4.0);
      });
    } catch (const std::exception& e) {
      leader_failure = e.what();
    }
  });
  while (!started) std::this_thread::sleep_for(5ms);

  fstore::Request request;
  auto begin = std::chrono::steady_clock::now();
  std::thread canceller([&] {
    std::this_thread::sleep_for(150ms);
    request.cancel();
  });
  bool computed = false;
  expect_error([&] { store.get_or_compute(kKey, [&](const fstore::Key&) { computed = true; return sample(1, 0); }, request); },
               fstore::Status::cancelled, "cancelled");
  canceller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1000ms);

  fstore::Request bounded;
  bounded.timeout(100ms);
  expect_error([&] { store.get_or_compute(kKey, [&](const fstore::Key&) { computed = true; return sample(1, 0); }, bounded); },
               fstore::Status::timeout, "gave up after 100 ms");
  EXPECT_FALSE(computed);
  leader.join();
  EXPECT_EQ(leader_failure, "");
  EXPECT_EQ(read_all(std::move(*store.get(kKey))).close, expected_close(5, 4.0));
  fstore::Stats stats = store.stats();
  EXPECT_EQ(stats.cancellations, 1u);
  EXPECT_EQ(stats.timeouts, 1u);
}

// A compute that fails once its caller cancelled the request is the caller
// giving up: a waiting call takes the compute over instead of failing.
TEST(Store, CancelledRequestHandsARunningComputeOver) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  fstore::Request request;
  std::atomic<bool> started{false}, stop{false};
  std::string leader_failure;
  fstore::Status leader_status = fstore::Status::ok;
  std::thread leader([&] {
    try {
      store.get_or_compute(
          kKey,
          [&](const fstore::Key&) -> fstore::UniqueArrayStream {
            started = true;
            while (!stop) std::this_thread::sleep_for(5ms);
            throw std::runtime_error("stopped: the caller cancelled");
          },
          request);
    } catch (const fstore::Error& e) {
      leader_status = e.status();
      leader_failure = e.what();
    }
  });
  while (!started) std::this_thread::sleep_for(5ms);
  constexpr int kWaiters = 4;
  std::atomic<int> computes{0};
  std::vector<std::vector<double>> results(kWaiters);
  std::vector<std::string> failures(kWaiters);
  std::vector<std::thread> waiters;
  for (int w = 0; w < kWaiters; w++) {
    waiters.emplace_back([&, w] {
      try {
        results[static_cast<size_t>(w)] = read_all(store.get_or_compute(kKey, [&](const fstore::Key&) {
                                                     computes++;
                                                     return sample(6, 2.0);
                                                   })).close;
      } catch (const std::exception& e) {
        failures[static_cast<size_t>(w)] = e.what();
      }
    });
  }
  while (store.stats().waits < kWaiters) std::this_thread::sleep_for(5ms);
  request.cancel();
  stop = true;
  leader.join();
  for (auto& waiter : waiters) waiter.join();
  EXPECT_EQ(leader_status, fstore::Status::cancelled) << leader_failure;
  EXPECT_NE(leader_failure.find("stopped: the caller cancelled"), std::string::npos) << leader_failure;
  EXPECT_EQ(computes.load(), 1);
  for (int w = 0; w < kWaiters; w++) {
    EXPECT_EQ(failures[static_cast<size_t>(w)], "");
    EXPECT_EQ(results[static_cast<size_t>(w)], expected_close(6, 2.0));
  }
}

TEST(Store, SummaryMaintainAndBackendFigures) {
  TempDir dir;
  fstore::Store store(options_for(dir));
  EXPECT_EQ(store.manifest_backend(), "duckdb");
  EXPECT_TRUE(store.warnings().empty());
  EXPECT_EQ(store.pool_stats(), std::nullopt);
  EXPECT_EQ(store.lock_stats(), std::nullopt);
  fstore::Key other = kKey;
  other.symbol = "MSFT";
  store.put(kKey, sample(4, 1.0));
  store.put(other, sample(6, 1.0));
  store.flush();
  Read summary = read_all(store.summary());
  EXPECT_EQ(summary.rows, 2);
  EXPECT_EQ(summary.names, (std::vector<std::string>{"feature_set", "symbol", "entries", "rows", "bytes", "oldest",
                                                     "newest"}));
  fstore::MaintainReport report = store.maintain();
  EXPECT_EQ(report.expired_entries + report.rows_without_file + report.corrupt_files + report.temp_files, 0u);
  fstore::MaintainOptions expire_all;
  expire_all.max_age = 0ms;
  expire_all.grace = 0ms;
  expire_all.dry_run = true;
  EXPECT_EQ(store.maintain(expire_all).expired_entries, 2u);
  EXPECT_TRUE(store.contains(kKey));
  expire_all.dry_run = false;
  EXPECT_EQ(store.maintain(expire_all).expired_entries, 2u);
  EXPECT_FALSE(store.contains(kKey));
  expire_all.grace = -1ms;
  expect_error([&] { store.maintain(expire_all); }, fstore::Status::invalid_argument, "grace_ms is negative");
}

TEST(Store, FallbackWarningsAndMigrationErrors) {
  TempDir dir;
  fstore::Options options = fstore::Options()
                                .set("cache_dir", dir.path())
                                .set("manifest", "auto")
                                .set("postgres.host", "127.0.0.1")
                                .set("postgres.port", "1")  // nothing listens there
                                .set("postgres.connect_timeout_ms", "300");
  fstore::Store store(options);
  EXPECT_EQ(store.manifest_backend(), "duckdb");
  ASSERT_EQ(store.warnings().size(), 1u);
  EXPECT_NE(store.warnings()[0].find("127.0.0.1"), std::string::npos) << store.warnings()[0];
  expect_error([&] { fstore::migrate_schema(options); }, fstore::Status::unavailable, "127.0.0.1");
}

// Library log lines reach a host logger, and go back to stderr when it is unset.
TEST(Log, HandlerReceivesTheFallbackWarningAndLevelsFilter) {
  struct Line {
    fstore::LogLevel level;
    std::string text;
  };
  auto lines = std::make_shared<std::vector<Line>>();
  auto guard = std::make_shared<std::mutex>();
  fstore::set_log_handler([lines, guard](fstore::LogLevel level, std::string_view text) {
    std::lock_guard<std::mutex> lock(*guard);
    lines->push_back({level, std::string(text)});
  });
  fstore::set_log_level(fstore::LogLevel::warn);
  auto fallback_options = [](const TempDir& dir) {
    return fstore::Options()
        .set("cache_dir", dir.path())
        .set("manifest", "auto")
        .set("postgres.host", "127.0.0.1")
        .set("postgres.port", "1")  // nothing listens there
        .set("postgres.connect_timeout_ms", "300");
  };
  auto taken = [&] {
    std::lock_guard<std::mutex> lock(*guard);
    std::vector<Line> out;
    out.swap(*lines);
    return out;
  };
  {
    TempDir dir;
    fstore::Store store(fallback_options(dir));
    ASSERT_EQ(store.warnings().size(), 1u);
    std::vector<Line> got = taken();
    bool seen = false;
    for (const Line& line : got) {
      EXPECT_EQ(line.text.rfind("libfstore: ", 0), std::string::npos) << "the host logger names the source";
      if (line.level == fstore::LogLevel::warn && line.text.find("127.0.0.1") != std::string::npos) seen = true;
    }
    EXPECT_TRUE(seen) << "no warning naming the server among " << got.size() << " lines";
  }
  // Below the level: nothing arrives.
  fstore::set_log_level(fstore::LogLevel::error);
  {
    TempDir dir;
    fstore::Store store(fallback_options(dir));
    EXPECT_EQ(store.warnings().size(), 1u);
    EXPECT_TRUE(taken().empty());
  }
  // A throwing handler cannot break the call that logged.
  fstore::set_log_level(fstore::LogLevel::warn);
  fstore::set_log_handler([](fstore::LogLevel, std::string_view) { throw std::runtime_error("logger down"); });
  {
    TempDir dir;
    fstore::Store store(fallback_options(dir));
    EXPECT_EQ(store.manifest_backend(), "duckdb");
  }
  // Unset: the first handler receives nothing more.
  fstore::set_log_handler(nullptr);
  {
    TempDir dir;
    fstore::Store store(fallback_options(dir));
  }
  EXPECT_TRUE(taken().empty());
  expect_error([] { fstore::set_log_level(static_cast<fstore::LogLevel>(9)); }, fstore::Status::invalid_argument,
               "level");
}

// PostgreSQL: run when FSTORE_TEST_PG_DSN names a server (run_tests.sh starts one).
TEST(Postgres, ManifestLocksAndMigration) {
  const char* dsn = std::getenv("FSTORE_TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') GTEST_SKIP() << "FSTORE_TEST_PG_DSN is not set";
  // A schema of this process: FSTORE_TEST_PG_SCHEMA (a prefix) and the pid.
  const char* prefix = std::getenv("FSTORE_TEST_PG_SCHEMA");
  std::string schema = std::string(prefix != nullptr && *prefix != '\0' ? prefix : "fstore_cpp") + "_" +
                       std::to_string(getpid());
  TempDir dir, old_dir;
  auto pg = [&](const TempDir& d) {
    return fstore::Options()
        .set("cache_dir", d.path())
        .set("manifest", "postgres")
        .set("postgres.dsn", dsn)
        .set("postgres.schema", schema)
        .set("wait.timeout_ms", "60000");
  };
  fstore::migrate_schema(pg(dir));
  fstore::Store store(pg(dir));
  EXPECT_EQ(store.manifest_backend(), "postgres");
  ASSERT_TRUE(store.pool_stats().has_value());
  EXPECT_GE(store.pool_stats()->size, 1u);
  int calls = 0;
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(read_all(store.get_or_compute(kKey, [&](const fstore::Key&) { calls++; return sample(3, 8.0); })).close,
              expected_close(3, 8.0));
  }
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(store.lock_stats().has_value());
  fstore::Key legacy = kKey;
  legacy.symbol = "LEGACY";
  {
    fstore::Store embedded(options_for(old_dir));
    embedded.put(legacy, sample(2, 1.0));
  }
  fstore::MigrationReport first = fstore::migrate_manifest(pg(old_dir));
  EXPECT_EQ(first.rows_read, 1u);
  EXPECT_EQ(first.inserted, 1u);
  fstore::MigrationReport again = fstore::migrate_manifest(pg(old_dir));
  EXPECT_EQ(again.inserted, 0u);
  EXPECT_EQ(again.already_present, 1u);
  EXPECT_TRUE(store.contains(kKey));
  EXPECT_FALSE(store.contains(legacy));  // the row moved; the file stays in its own cache directory
}

TEST(UniqueArrayStream, MovesAndReleases) {
  long before = at_live_objects();
  {
    fstore::UniqueArrayStream a = sample(3, 1.0);
    EXPECT_TRUE(a.valid());
    fstore::UniqueArrayStream b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(b.valid());
    fstore::UniqueArrayStream c;
    c = std::move(b);
    EXPECT_TRUE(c.valid());
    c = sample(2, 1.0);  // the first is released on assignment
    ArrowArrayStream raw;
    c.move_to(&raw);
    EXPECT_FALSE(c.valid());
    fstore::UniqueArrayStream d(&raw);
    EXPECT_EQ(raw.release, nullptr);
    EXPECT_TRUE(d.valid());
  }
  EXPECT_EQ(at_live_objects(), before);
}

}  // namespace
