// A small libfstore consumer: usage `fstore_example <cache dir>`.
//
// Any Arrow C stream can be cached; to stay free of other libraries this
// example caches a snapshot of the store's own manifest (itself an Arrow
// stream). Real programs return data from nanoarrow, Arrow C++, DuckDB, ...
#include <fstore/fstore.hpp>

#include <cstdio>
#include <exception>
#include <stdexcept>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <cache dir>\n", argv[0]);
    return 2;
  }
  try {
    std::printf("libfstore %s; lock key of AAPL: %lld\n", fstore::version().c_str(),
                static_cast<long long>(fstore::lock_key("AAPL")));
    fstore::Store store(fstore::Options().set("cache_dir", argv[1]).set("wait.timeout_ms", "30000"));
    const fstore::Key key{"manifest_snapshots", "ALL", 19000, 19000, R"({"version": 1})"};

    if (store.get(key)) throw std::runtime_error("a fresh cache should not hold the entry");
    int computes = 0;
    auto compute = [&](const fstore::Key&) {
      computes++;
      return store.list();
    };
    fstore::UniqueArrayStream first = store.get_or_compute(key, compute);
    fstore::UniqueArrayStream second = store.get_or_compute(key, compute);
    struct ArrowSchema schema;
    if (second->get_schema(second.get(), &schema) != 0) throw std::runtime_error("cannot read the schema");
    long long columns = schema.n_children;
    schema.release(&schema);

    fstore::Stats stats = store.stats();
    std::printf("computes: %d, hits: %llu, columns: %lld, contains: %s\n", computes,
                static_cast<unsigned long long>(stats.hits), columns, store.contains(key) ? "yes" : "no");
    if (computes != 1 || stats.hits < 1 || !store.contains(key) || !store.invalidate(key)) {
      throw std::runtime_error("unexpected cache behaviour");
    }
    std::printf("example: ok\n");
    return 0;
  } catch (const fstore::Error& e) {
    std::fprintf(stderr, "fstore error (%s): %s\n", fstore::status_name(e.status()), e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
