// Text <-> token ids for the two tokenizer families cacheclip supports (see spec.h):
//
//   BPE (byte-level, GPT-2 style; GGUF "gpt2"): text -> pre-tokenizer regexes chosen by spec.pre
//       -> each word's bytes mapped to GPT-2's printable code points -> rank-ordered merges.
//   SPM (SentencePiece-style BPE; GGUF "llama", llama2.c): optional dummy-prefix space, spaces
//       -> U+2581 "▁", then repeatedly merge the adjacent pair whose concatenation is the
//       highest-scoring token; leftover characters become <0xXX> byte tokens (or unk).
//
// Both reproduce llama.cpp's llama_tokenize (and the HF reference tokenizers it is tested
// against) id for id. A Tokenizer is immutable after construction and safe to use from several
// threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/spec.h"

namespace cc {

class Tokenizer {
 public:
  // Validates `spec` and builds the lookup tables. Throws cc::Error (message starting with
  // "tokenizer: ") when: the vocabulary is empty or has a duplicate non-empty piece; types or
  // scores do not have one entry per token (empty is allowed: all Normal / all 0); a type or
  // score is invalid (NaN); a special id (bos/eos/unk/pad/eot) is out of range; add_bos/add_eos
  // is set without a bos/eos id; for BPE: spec.pre is unknown, or a merge is malformed or refers
  // to a piece (or yields a concatenation) that is not in the vocabulary.
  explicit Tokenizer(TokenizerSpec spec);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Token ids for `text` (arbitrary bytes; invalid UTF-8 is encoded through byte tokens).
  // A byte (BPE) or character (SPM, without a <0xXX> token for each of its bytes) that the
  // vocabulary cannot express becomes spec.unk_id, or is dropped when there is none.
  // add_special: prepend BOS if spec.add_bos, append EOS if spec.add_eos.
  // parse_special: occurrences of Control, UserDefined and Unknown token texts in `text` are
  //   emitted as those ids (leftmost match first, the longest one at that position); otherwise
  //   such texts are tokenized like any other text.
  // SPM with add_space_prefix: a space is prepended to the start of the text and to each text
  //   run that directly follows a matched special token (llama.cpp's rule); nothing for "".
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes the ids stand for, concatenated. Control and Unknown tokens give their text, or
  // nothing when skip_special. SPM with add_space_prefix: one leading space is removed from the
  // first piece that is not a Control/Unknown token if it starts with one and no other text
  // precedes it (the dummy prefix that encode added; tokens such as a leading BOS are skipped
  // over), so decode(encode(s)) == s. Throws cc::Error naming the id when one is out of range.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // The bytes one token decodes to (Control/Unknown: their text; Unused: ""). No dummy-prefix
  // stripping. Throws cc::Error on an out-of-range id.
  std::string token_to_piece(int32_t id) const;

  int32_t n_vocab() const;
  // The spec it was built from, except `merges`, which are compiled into the merge table and
  // not kept (a model's own TokenizerSpec still has them, for writing the model back).
  const TokenizerSpec& spec() const;

  // True for the EOS id, any of spec.eot_ids, and (as llama.cpp does) any token whose text is a
  // well-known end-of-turn marker: <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>,
  // <|endoftext|>, <|eom_id|>, <EOT>. False for out-of-range ids.
  bool is_eog(int32_t id) const;

  // The id of the vocabulary entry whose stored piece is exactly `piece` (stored form: "Ġthe"
  // for byte-level BPE, "▁the" for SPM, "<|im_end|>" for specials).
  std::optional<int32_t> find_token(std::string_view piece) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Name used in messages and by the CLI: "BPE" or "SPM".
const char* tokenizer_kind_name(TokenizerKind kind);

}  // namespace cc
