#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/mapped_file.h"
#include "cli/commands.h"
#include "model/tokenizer_source.h"
#include "tokenizer/tokenizer.h"

namespace cc::cli {

namespace {

// Printable form of a piece: control bytes escaped so one token stays on one line.
std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char ch : s) {
    if (ch == '\n') o += "\\n";
    else if (ch == '\t') o += "\\t";
    else if (ch == '\r') o += "\\r";
    else if (ch < 0x20 || ch == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", ch);
      o += b;
    } else o += static_cast<char>(ch);
  }
  return o;
}

}  // namespace

Runner add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "Tokenize text with a model's tokenizer");
  struct Opts {
    std::string model, text, file;
    bool ids = false, no_special = false, parse_special = false, json = false;
    int64_t vocab = 0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("model", o->model, "model file/folder, vocab-only GGUF, tokenizer.json or llama2.c tokenizer.bin")
      ->required();
  sub->add_option("text", o->text, "text to tokenize");
  sub->add_option("--file", o->file, "read the text from this file instead");
  sub->add_flag("--ids", o->ids, "print only the ids, space-separated, on one line");
  sub->add_flag("--no-special", o->no_special, "add no BOS/EOS");
  sub->add_flag("--parse-special", o->parse_special, "recognise special-token text such as <|im_start|>");
  sub->add_flag("--json", o->json, "print JSON");
  sub->add_option("--vocab", o->vocab, "vocabulary size (llama2.c tokenizer.bin only)");
  return [o]() {
    if (!o->file.empty() && !o->text.empty()) fail("give the text either as an argument or with --file, not both");
    if (o->file.empty() && o->text.empty()) fail("no text: give TEXT or --file PATH");
    std::string text = o->file.empty() ? o->text : read_text_file(o->file);
    Tokenizer tok(load_tokenizer_spec(o->model, o->vocab));
    std::vector<int32_t> ids = tok.encode(text, !o->no_special, o->parse_special);
    if (o->json) {
      nlohmann::json j;
      j["ids"] = ids;
      j["pieces"] = nlohmann::json::array();
      for (int32_t id : ids) {
        // JSON needs valid UTF-8: a piece that is part of a multi-byte character is escaped.
        j["pieces"].push_back(nlohmann::json(tok.token_to_piece(id)).dump(-1, ' ', false,
                                                                          nlohmann::json::error_handler_t::replace));
      }
      j["count"] = ids.size();
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    if (o->ids) {
      for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
      std::printf("\n");
      return 0;
    }
    for (int32_t id : ids) std::printf("%8d  '%s'\n", id, printable(tok.token_to_piece(id)).c_str());
    std::printf("%zu tokens\n", ids.size());
    return 0;
  };
}

}  // namespace cc::cli
