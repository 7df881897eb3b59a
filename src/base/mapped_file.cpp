#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace cc {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; such files are
  // refused below. Regular files ignore the flag.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, S_ISDIR(st.st_mode) ? ": is a directory, not a file" : ": not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(path, ": cannot map ", f->size_, " bytes: ", std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(size_t offset, size_t n) const {
  if (data_ == nullptr || offset >= size_) return;
  n = std::min(n, size_ - offset);
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t first = (offset + page - 1) / page * page, last = (offset + n) / page * page;
  // The mapping starts on a page boundary, so file offsets and mapping offsets align alike.
  if (last > first) madvise(const_cast<uint8_t*>(data_) + first, last - first, MADV_DONTNEED);
}

void ByteReader::need(size_t n, const char* field) const {
  if (n > size_ - off_) {
    fail(what_, ": truncated: reading ", field, " needs ", n, " bytes at offset ", off_, " but only ",
         size_ - off_, " remain");
  }
}

void ByteReader::seek(size_t off, const char* field) {
  if (off > size_) fail(what_, ": ", field, " offset ", off, " is past the end (size ", size_, ")");
  off_ = off;
}

std::string read_text_file(const std::string& path) {
  // A directory opens as an empty stream: refuse it, and anything else that is not a file, a
  // pipe (`-f <(cmd)`) or a character device (/dev/stdin), which a user passes on purpose.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open: ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path, ": is a directory, not a file");
  if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) fail(path, ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, ": read error");
  return ss.str();
}

void write_file_mapped(const std::string& path, size_t size, const std::function<void(uint8_t*)>& fill) {
  // Unique per process (pid) and per call (counter): two threads of one process writing the same
  // path each get their own temporary, and the last rename wins with a complete file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = cat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1, std::memory_order_relaxed));
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, ": cannot create: ", std::strerror(errno));
  void* map = nullptr;
  auto give_up = [&](const std::string& what, int err) {
    if (map != nullptr) munmap(map, size);
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, ": ", what, err ? cat(": ", std::strerror(err)) : std::string());
  };
  if (size > 0) {
    if (int e = posix_fallocate(fd, 0, static_cast<off_t>(size)); e != 0) {
      give_up(cat("cannot reserve ", size, " bytes on disk"), e);
    }
    map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      map = nullptr;
      give_up("cannot map the output for writing", errno);
    }
    try {
      fill(static_cast<uint8_t*>(map));
    } catch (...) {
      munmap(map, size);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    if (msync(map, size, MS_SYNC) != 0) give_up("cannot flush to disk", errno);
    munmap(map, size);
    map = nullptr;
  }
  if (::fsync(fd) != 0) give_up("cannot flush to disk", errno);
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, ": cannot close: ", std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail(path, ": cannot rename the temporary file into place: ", std::strerror(e));
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_file_mapped(path, size, [&](uint8_t* p) { std::memcpy(p, data, size); });
}

}  // namespace cc
