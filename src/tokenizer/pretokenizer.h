// Byte-level BPE pre-tokenizers: the regex lists that split text into words before merging,
// selected by TokenizerSpec::pre (GGUF tokenizer.ggml.pre). Internal to cc_tokenizer.
//
// Splitting follows llama.cpp's unicode_regex_split: the regexes are applied in order; each one
// splits every current fragment into its matches and the unmatched text between them (both kept,
// in order), so a later regex only refines earlier fragments. A HF tokenizer.json Sequence of
// Split(pattern, behavior=Isolated) pre-tokenizers has the same meaning.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cc::tok {

struct PreTokenizerDef {
  std::vector<std::string> names;    // names[0] is canonical, the rest are aliases
  std::vector<std::string> regexes;  // PCRE2 (UTF+UCP) patterns used to split, in order
  // The same pre-tokenizer as HF tokenizer.json pre-tokenizer steps (see hf_step_regex):
  // "bytelevel" (ByteLevel use_regex=true), "digits", "digits:individual",
  // "punct", "punct:contiguous", "split:<regex>" (Split, behavior Isolated).
  std::vector<std::string> hf_steps;
  bool ignore_merges = false;    // a word that is itself a token is emitted without merging
  bool default_add_bos = false;  // llama.cpp's add_bos default when the GGUF has no key
};

// All known pre-tokenizers.
const std::vector<PreTokenizerDef>& pre_tokenizers();
// The definition for `name` (canonical or alias), or nullptr.
const PreTokenizerDef* find_pre_tokenizer(std::string_view name);
// The regex an HF step key stands for (see PreTokenizerDef::hf_steps); "" for an unknown key.
std::string hf_step_regex(std::string_view step);

// Compiled regex list; thread-safe for concurrent split() calls.
class RegexSplitter {
 public:
  // Throws cc::Error naming the pattern when one does not compile.
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the words of `text` (views into it, covering it exactly, in order) to `out`.
  // Invalid UTF-8 never matches a pattern and ends up in the unmatched fragments.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Code;
  std::vector<std::unique_ptr<Code>> codes_;
};

}  // namespace cc::tok
