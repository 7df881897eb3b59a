// Chat prompt formatting for the three template families cacheclip supports, without a Jinja
// engine: the family is recognised from marker strings in the model's template and rendered by
// hand-written code that reproduces what the family's Jinja template produces.
//
// BOS rule (no double BOS): the rendered text already contains the BOS token text wherever the
// family's template puts one (Llama-2: before every [INST]; Llama-3: at the start), and for
// ChatML it starts with the BOS text when spec.add_bos is set. So always encode the result with
// add_special = false and parse_special = true:
//   tokenizer.encode(apply_chat_template(...), /*add_special=*/false, /*parse_special=*/true)
#pragma once
#include <string>
#include <vector>

#include "tokenizer/spec.h"

namespace cc {

enum class ChatFormat {
  ChatML,  // <|im_start|>role\n...<|im_end|>\n (Qwen, many fine-tunes)
  Llama2,  // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  Llama3,  // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// Recognises the family from marker substrings: "<|im_start|>" -> ChatML,
// "<|start_header_id|>" -> Llama3, "[INST]" -> Llama2. Throws cc::Error
// "unknown chat template (first 60 chars: ...); supported: ChatML/Qwen, Llama-2, Llama-3".
ChatFormat detect_chat_format(const std::string& template_text);

// "ChatML", "Llama-2" or "Llama-3".
std::string chat_format_name(ChatFormat format);

// Renders `messages` as the family's template does. Token texts (BOS/EOS) come from `spec`;
// spec.chat_template is consulted for variants:
//   ChatML: when the first message is not "system" and the template text carries a literal
//     default system prompt ("<|im_start|>system\n<text><|im_end|>", e.g. Qwen2.5's "You are
//     Qwen, created by Alibaba Cloud. You are a helpful assistant."), that system turn is
//     inserted first; otherwise none is. add_generation_prompt appends "<|im_start|>assistant\n".
//   Llama-3: contents are trimmed (Jinja `| trim`); if the template contains "Cutting Knowledge
//     Date" (Llama-3.1+), the system header block with "Cutting Knowledge Date: December 2023"
//     and "Today Date: 26 Jul 2024" (the template's default date) is emitted first, holding the
//     system message if there is one.
//   Llama-2: an optional leading system message is folded into the first user turn; roles must
//     alternate user/assistant (else cc::Error, as the template raises); add_generation_prompt
//     has no effect (the template ignores it).
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const TokenizerSpec& spec);

}  // namespace cc
