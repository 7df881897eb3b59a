// Reading and writing TokenizerSpec in the formats cacheclip meets: GGUF tokenizer.ggml.*
// metadata, Hugging Face tokenizer.json (+ tokenizer_config.json), llama2.c tokenizer.bin.
// Every loader throws cc::Error with a one-line message naming the source and the problem;
// none of them crashes on malformed input.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/gguf.h"
#include "tokenizer/spec.h"

namespace cc {

// ---- GGUF --------------------------------------------------------------------------------------

// Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, bos/eos/unknown/padding/
// eot/eom_token_id, add_bos_token, add_eos_token, add_space_prefix} and tokenizer.chat_template.
// model "gpt2" -> BPE, "llama" -> SPM; anything else throws "unsupported tokenizer model 'X'".
// Missing keys take llama.cpp's defaults: SPM: bos 1, eos 2, unk 0, add_bos true,
// add_space_prefix true; BPE: bos = eos = 11 (llama.cpp's GPT-2 default), add_bos true only for
// the llama3/tekken pre-tokenizers; pre "default"; types Normal; scores empty (BPE) or 0 (SPM).
// A special id outside the vocabulary is treated as absent (-1), as llama.cpp ignores it.
// eot_ids = [eot_token_id, eom_token_id] (those present), or cacheclip.tokenizer.eot_token_ids
// when the file has it. Messages name meta.source. The result is not validated beyond types
// and array lengths; construct a Tokenizer to validate it fully.
TokenizerSpec tokenizer_from_gguf(const Metadata& meta);

// Writes `spec` as the keys above with llama.cpp's types (tokens/merges: string arrays, scores:
// f32 array, token_type: i32 array, ids: u32, flags: bool), so that
// tokenizer_from_gguf(tokenizer_to_gguf(s)) == s. Empty scores/types/merges/chat template are
// not written; an absent id (-1) whose llama.cpp default is not "none" is written as
// 0xFFFFFFFF. More than two eot ids are also written to cacheclip.tokenizer.eot_token_ids.
void tokenizer_to_gguf(const TokenizerSpec& spec, Metadata& meta);

// ---- Hugging Face ------------------------------------------------------------------------------

// Parses tokenizer.json (and tokenizer_config.json when not empty). `name` is used in messages.
// Supported: model.type "BPE" with
//   - a ByteLevel pre-tokenizer (alone or in a Sequence with Split/Digits/Punctuation steps):
//     kind BPE; spec.pre is the known pre-tokenizer whose regexes the steps spell (gpt-2,
//     llama3, qwen2, starcoder, falcon, deepseek-*, ...; config key cacheclip_pre_tokenizer picks
//     among names sharing one regex list), else an error. An NFC normalizer is ignored (as
//     llama.cpp does);
//   - a Metaspace pre-tokenizer or a Replace(" " -> "▁") normalizer (Llama-2/TinyLlama style):
//     kind SPM; add_space_prefix from Prepend("▁") / Metaspace prepend_scheme; <0xXX> tokens
//     are Byte tokens when byte_fallback; scores derived from merge ranks (the token made first
//     by merge r scores -r; Normal tokens no merge makes score below every merge; others 0).
// Token types: vocab entries Normal; added_tokens with special=true -> Control
// (model.unk_token -> Unknown), other added tokens -> UserDefined ("[PAD<id>]" -> Unused); ids
// missing from both vocab and added_tokens (at most 1024 holes) become "[PAD<id>]" Unused;
// config keys cacheclip_unused_token_ids / cacheclip_unknown_token_ids override types.
// From tokenizer_config.json: bos/eos/unk/pad_token (string or {"content": ...}; when absent:
// bos from a TemplateProcessing post-processor, SPM "<s>"/"</s>", unk = model.unk_token),
// add_bos_token/add_eos_token (else from TemplateProcessing, else SPM add_bos true / the pre's
// llama.cpp default), chat_template (string, or list of {name, template}: "default", else the
// first). eot_ids: cacheclip_eot_tokens when present, else the first of <|eot_id|>,
// <|im_end|>, <|end|>, <end_of_turn>, <EOT>, <|endoftext|> that is not EOS, plus <|eom_id|>.
// Throws cc::Error naming `name` for: invalid JSON, a missing or unsupported model/type
// ("Unigram", "WordPiece", ...), a bad vocab (non-integer, negative, out of range or
// duplicate id), merges that are malformed or name unknown pieces, unsupported
// pre-tokenizers/normalizers, and special tokens that are not in the vocabulary.
TokenizerSpec tokenizer_from_hf_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                                     const std::string& name);

// Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json.
TokenizerSpec tokenizer_from_hf(const std::string& dir);

// HF tokenizer.json for `spec`: BPE -> ByteLevel (+ Split steps of spec.pre) pre-tokenizer,
// ByteLevel decoder; SPM -> Llama-2 style (Prepend/Replace normalizer, ByteFallback decoder,
// byte_fallback model; merges generated from the scores when spec.merges is empty). Control,
// Unknown, UserDefined and Unused tokens are listed in added_tokens. Pretty-printed.
std::string tokenizer_to_hf_json(const TokenizerSpec& spec);

// HF tokenizer_config.json: bos/eos/unk/pad_token, add_bos_token, add_eos_token,
// chat_template, plus extra keys that HF ignores: cacheclip_pre_tokenizer (the exact pre name
// where several share one regex list), cacheclip_eot_tokens, cacheclip_unused_token_ids and
// cacheclip_unknown_token_ids (types HF cannot express). So that
//   tokenizer_from_hf_json(tokenizer_to_hf_json(s), tokenizer_config_to_hf_json(s))
// reproduces s's kind, tokens, types, merges, special ids, eot ids, pre, flags and chat
// template (SPM scores are re-derived from the merges; add_space_prefix is kept for SPM only;
// empty pieces come back as "[PAD<id>]").
std::string tokenizer_config_to_hf_json(const TokenizerSpec& spec);

// ---- llama2.c ----------------------------------------------------------------------------------

// llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 length,
// bytes. The file must hold exactly `vocab_size` tokens. Result: kind SPM, unk 0 (Unknown),
// bos 1, eos 2 (Control; llama2.c's "\n<s>\n" / "\n</s>\n" texts become "<s>" / "</s>"),
// "<0xXX>" Byte tokens, other tokens Normal with spaces written as "▁"; add_bos true,
// add_space_prefix true (llama2.c's encode prepends a dummy " " to non-empty text and its
// decode drops the leading space after BOS). Throws cc::Error naming `path` on truncation,
// negative or oversized lengths, a non-positive or mismatched vocab_size.
TokenizerSpec tokenizer_from_llama2c(const std::string& path, int32_t vocab_size);
// Same over bytes in memory; `name` is used in messages.
TokenizerSpec tokenizer_from_llama2c_bytes(const uint8_t* data, size_t size, int32_t vocab_size,
                                           const std::string& name);

}  // namespace cc
