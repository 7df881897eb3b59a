#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace cc {

// A read-only memory map of a whole file. Tensor data is used in place (no copy), so a
// MappedFile must outlive every view into it; Model keeps shared_ptrs to its files.
class MappedFile {
 public:
  // Throws cc::Error naming the path on any failure (missing, directory, unreadable).
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the whole pages inside [offset, offset + n) from the process's resident set (a hint:
  // madvise MADV_DONTNEED; the bytes stay valid and are read again from the page cache if
  // touched). For parts read once at load, such as a GGUF file's metadata.
  void release(size_t offset, size_t n) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Bounds-checked little-endian reader over a byte range. Every read checks the remaining size
// and throws cc::Error("<what>: <file>: truncated ...") instead of reading out of bounds.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  size_t offset() const { return off_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - off_; }
  const std::string& what() const { return what_; }

  template <typename T>
  T read(const char* field) {
    T v;
    need(sizeof(T), field);
    __builtin_memcpy(&v, data_ + off_, sizeof(T));
    off_ += sizeof(T);
    return v;
  }
  // Returns a pointer to n bytes and advances; throws if fewer remain.
  const uint8_t* take(size_t n, const char* field) {
    need(n, field);
    const uint8_t* p = data_ + off_;
    off_ += n;
    return p;
  }
  void seek(size_t off, const char* field);
  void need(size_t n, const char* field) const;

 private:
  const uint8_t* data_;
  size_t size_;
  size_t off_ = 0;
  std::string what_;
};

// Whole-file helpers for small text files (configs, tokenizer.json).
std::string read_text_file(const std::string& path);
// Creates `path` atomically: "<path>.tmp.<pid>" of exactly `size` bytes is preallocated
// (posix_fallocate, so a full disk is a cc::Error rather than a SIGBUS through the mapping),
// mapped for writing, filled by fill(ptr), synced and renamed over path. Readers never see a
// partial file; on any failure (an exception from fill included) the temporary is removed.
void write_file_mapped(const std::string& path, size_t size, const std::function<void(uint8_t*)>& fill);
// write_file_mapped with a memcpy of data.
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace cc
