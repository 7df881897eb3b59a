#include <algorithm>
#include <chrono>
#include <cstdio>

#include "base/error.h"
#include "cli/commands.h"
#include "infer/sampler.h"
#include "infer/transformer.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace cc::cli {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

Runner add_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt, streaming it to stdout");
  struct Opts {
    std::string model, prompt, file, tokenizer, kv_type = "f16", backend = "cpu", device;
    int64_t n = 128, ctx = 0;
    int threads = 0;
    bool chat = false, no_echo = false;
    std::vector<std::string> stops;
    SamplerConfig s;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("-m,--model", o->model, "model file or folder")->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text (may be empty)");
  sub->add_option("-f,--file", o->file, "read the prompt from a file");
  sub->add_option("-n,--n-predict", o->n, "tokens to generate")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  sub->add_option("-c,--ctx", o->ctx, "KV cache size in tokens (default: prompt + n)");
  sub->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16, bf16")->capture_default_str();
  sub->add_flag("--chat", o->chat, "wrap the prompt in the model's chat template as a user turn");
  sub->add_flag("--no-echo", o->no_echo, "do not print the prompt");
  sub->add_option("--stop", o->stops, "stop when this text is generated (repeatable)");
  sub->add_option("--temp", o->s.temperature, "temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", o->s.top_k, "top-k (0 = off)")->capture_default_str();
  sub->add_option("--top-p", o->s.top_p, "top-p (1 = off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->s.repetition_penalty, "repetition penalty (1 = off)")->capture_default_str();
  sub->add_option("--repeat-last-n", o->s.repeat_last_n, "tokens the penalty looks back")->capture_default_str();
  sub->add_option("--seed", o->s.seed, "sampling seed")->capture_default_str();
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  sub->add_option("--backend", o->backend, "cpu, opencl or auto")->capture_default_str();
  sub->add_option("--device", o->device, "OpenCL device: P:D, P, or part of its name");
  return [o]() {
    if (!o->file.empty() && !o->prompt.empty()) fail("give the prompt either with -p or with --file, not both");
    std::string prompt = o->file.empty() ? o->prompt : read_text_file(o->file);
    if (o->n < 0 || o->n > (int64_t{1} << 24)) fail("-n must be in 0..16777216, got ", o->n);
    if (o->ctx < 0 || o->ctx > (int64_t{1} << 24)) fail("-c must be in 0..16777216, got ", o->ctx);
    LoadOptions lo;
    lo.tokenizer_path = o->tokenizer;
    Model m = load_model(o->model, lo);
    // The Tokenizer takes the model's spec over: no second copy of a 150k vocabulary.
    Tokenizer tok(std::move(m.tokenizer));
    std::vector<int32_t> ids;
    bool echo = !o->no_echo;
    if (o->chat) {
      const TokenizerSpec& ts = tok.spec();
      if (ts.chat_template.empty()) fail(m.path, ": the model has no chat template; drop --chat");
      ChatFormat f = detect_chat_format(ts.chat_template);
      std::string text = apply_chat_template(f, {{"user", prompt}}, true, ts);
      ids = tok.encode(text, false, true);
      echo = false;
    } else {
      ids = tok.encode(prompt, true, false);
    }
    if (ids.empty()) fail("the prompt is empty and the model adds no BOS token: give a prompt");
    auto kv_type = dtype_from_name(o->kv_type);
    if (!kv_type) fail("unknown KV cache type '", o->kv_type, "' (f32, f16, bf16)");
    const int64_t need = static_cast<int64_t>(ids.size()) + o->n;
    const int64_t ctx = o->ctx > 0 ? o->ctx : need;
    if (need > ctx) fail("prompt (", ids.size(), " tokens) + ", o->n, " new tokens exceed the context of ", ctx);
    CpuBackendOptions bo;
    bo.threads = o->threads;
    OpenClOptions clo;
    clo.device = o->device;
    auto backend = make_backend(o->backend, bo, clo);
    Transformer tf(m, *backend);
    // Positions 0 .. ids + n - 2 run through the model (the last sampled token is not fed back).
    tf.warn_past_trained_context(std::max<int64_t>(static_cast<int64_t>(ids.size()), need - 1));
    KVCache kv = tf.make_cache(ctx, *kv_type);
    Sampler sampler(o->s);
    StopMatcher stop(o->stops);

    if (echo) std::fputs(tok.decode(ids, true).c_str(), stdout);
    std::fflush(stdout);
    auto t0 = Clock::now();
    std::vector<float> logits = tf.eval(ids, kv);
    const double prompt_ms = ms_since(t0);
    std::vector<int32_t> all = ids;
    int64_t generated = 0;
    auto t1 = Clock::now();
    for (int64_t i = 0; i < o->n; ++i) {
      const int32_t next = sampler.sample(logits, all);
      if (tok.is_eog(next)) break;
      all.push_back(next);
      ++generated;
      // The new text = decode(window + next) minus decode(window), over a window of the last
      // tokens: SentencePiece's leading-space rule and multi-byte characters come out as in a
      // one-shot decode (the window starts at the sequence start while it is short), and each
      // step costs O(1) instead of re-decoding everything.
      const size_t w0 = all.size() > 8 ? all.size() - 8 : 0;
      const std::span<const int32_t> win(all.data() + w0, all.size() - w0);
      const std::string before = tok.decode(win.first(win.size() - 1), true);
      const std::string after = tok.decode(win, true);
      if (after.size() > before.size()) {
        std::string out = stop.feed(std::string_view(after).substr(before.size()));
        std::fputs(out.c_str(), stdout);
        std::fflush(stdout);
        if (stop.stopped()) break;
      }
      if (i + 1 < o->n) logits = tf.eval(std::span<const int32_t>(&next, 1), kv);
    }
    if (!stop.stopped()) std::fputs(stop.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    const double gen_ms = ms_since(t1);
    std::fprintf(stderr, "\nprompt: %zu tokens in %.1f ms (%.1f tokens/s)\n", ids.size(), prompt_ms,
                 ids.size() * 1000.0 / std::max(prompt_ms, 1e-3));
    std::fprintf(stderr, "generation: %lld tokens in %.1f ms (%.1f tokens/s)  [%s, KV %s]\n",
                 static_cast<long long>(generated), gen_ms, generated * 1000.0 / std::max(gen_ms, 1e-3),
                 backend->name().c_str(), dtype_name(kv.type));
    return 0;
  };
}

}  // namespace cc::cli
