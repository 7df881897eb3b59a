// Small UTF-8 and GPT-2 byte-level helpers shared by the tokenizer sources (internal header).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cc::tok {

// Length of the UTF-8 sequence announced by lead byte `b` (1 for ASCII, continuation bytes and
// invalid leads, so every byte string splits into "characters" without error).
inline size_t utf8_len(uint8_t b) {
  if (b < 0xC0) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  if (b < 0xF8) return 4;
  return 1;
}

// Length of the character starting at text[pos]: utf8_len of its lead byte when that many
// bytes follow and all are continuation bytes, else 1 (an invalid byte stands alone).
inline size_t utf8_char_len(std::string_view text, size_t pos) {
  const size_t n = utf8_len(static_cast<uint8_t>(text[pos]));
  if (n == 1 || pos + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<uint8_t>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

// Appends the UTF-8 encoding of code point `cp` (must be <= 0x10FFFF) to `out`.
void append_utf8(uint32_t cp, std::string& out);

// Decodes the code point starting at `text[pos]` and advances `pos`. Invalid or truncated
// sequences yield -1 and advance by one byte.
int32_t next_codepoint(std::string_view text, size_t& pos);

// GPT-2's reversible byte <-> printable-code-point mapping used by byte-level BPE vocabularies:
// bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves, the other 68 bytes map to
// U+0100.. in byte order (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
struct ByteUnicode {
  std::array<std::string, 256> byte_to_utf8;  // byte -> UTF-8 of its code point
  std::array<int16_t, 324> cp_to_byte;        // code point (< 324) -> byte, -1 if unmapped
};
const ByteUnicode& byte_unicode();

// Byte-level encoding of raw bytes: each byte becomes its mapped code point's UTF-8.
std::string bytes_to_byte_level(std::string_view bytes);

// Inverse of bytes_to_byte_level. Code points outside the mapping (not produced by
// bytes_to_byte_level) are kept as their UTF-8 bytes. Returns false if any was found.
bool byte_level_to_bytes(std::string_view text, std::string& out);

// SentencePiece's whitespace marker U+2581 "▁".
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";

// Replaces every occurrence of `from` by `to`.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

// "<0xAB>" -> 0xAB; -1 when `piece` is not exactly a byte token name (upper- or lower-case hex).
int parse_byte_token(std::string_view piece);

}  // namespace cc::tok
