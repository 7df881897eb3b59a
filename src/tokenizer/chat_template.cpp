#include "tokenizer/chat_template.h"

#include "base/error.h"

namespace cc {
namespace {

// Python str.strip() / Jinja `trim` for ASCII whitespace.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string token_text(const TokenizerSpec& spec, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= spec.tokens.size()) return "";
  return spec.tokens[static_cast<size_t>(id)];
}

// A literal default system prompt in a ChatML template: the text between
// "<|im_start|>system\n" (written "\n" in the Jinja source or as a real newline) and
// "<|im_end|>" when it contains no quotes, braces or '+' (i.e. it is not an expression).
std::string chatml_default_system(const std::string& tmpl) {
  for (const std::string marker : {"<|im_start|>system\\n", "<|im_start|>system\n"}) {
    size_t pos = 0;
    while ((pos = tmpl.find(marker, pos)) != std::string::npos) {
      pos += marker.size();
      const size_t end = tmpl.find("<|im_end|>", pos);
      if (end == std::string::npos) break;
      const std::string text = tmpl.substr(pos, end - pos);
      if (!text.empty() && text.find_first_of("'\"{}+\\") == std::string::npos) return text;
    }
  }
  return "";
}

}  // namespace

ChatFormat detect_chat_format(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
  if (t.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
  if (t.find("[INST]") != std::string::npos) return ChatFormat::Llama2;
  std::string head = t.substr(0, 60);
  for (char& c : head) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  fail("unknown chat template (first 60 chars: ", head, "); supported: ChatML/Qwen, Llama-2, Llama-3");
}

std::string chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML:
      return "ChatML";
    case ChatFormat::Llama2:
      return "Llama-2";
    case ChatFormat::Llama3:
      return "Llama-3";
  }
  return "?";
}

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const TokenizerSpec& spec) {
  const std::string bos = token_text(spec, spec.bos_id);
  const std::string eos = token_text(spec, spec.eos_id);
  std::string out;
  switch (format) {
    case ChatFormat::ChatML: {
      if (spec.add_bos) out += bos;
      const std::string def = chatml_default_system(spec.chat_template);
      if (!def.empty() && (messages.empty() || messages[0].role != "system")) {
        out += "<|im_start|>system\n" + def + "<|im_end|>\n";
      }
      for (const ChatMessage& m : messages) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatFormat::Llama3: {
      out += bos;
      size_t first = 0;
      if (spec.chat_template.find("Cutting Knowledge Date") != std::string::npos) {
        std::string system;
        if (!messages.empty() && messages[0].role == "system") {
          system = strip(messages[0].content);
          first = 1;
        }
        out +=
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
            system + "<|eot_id|>";
      }
      for (size_t i = first; i < messages.size(); ++i) {
        out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
               strip(messages[i].content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatFormat::Llama2: {
      size_t first = 0;
      const bool has_system = !messages.empty() && messages[0].role == "system";
      if (has_system) first = 1;
      for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        const size_t k = i - first;
        if ((m.role == "user") != (k % 2 == 0)) {
          fail(
              "chat template (Llama-2): conversation roles must alternate "
              "user/assistant/user/assistant/... (message ",
              i, " has role '", m.role, "')");
        }
        std::string content = m.content;
        if (k == 0 && has_system) {
          content = "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + m.content;
        }
        if (m.role == "user") {
          out += bos + "[INST] " + strip(content) + " [/INST]";
        } else if (m.role == "assistant") {
          out += ' ';
          out += strip(content);
          out += ' ';
          out += eos;
        }
      }
      break;
    }
  }
  return out;
}

}  // namespace cc
