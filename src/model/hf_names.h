// Tensor names: Hugging Face (model.layers.N.self_attn.q_proj.weight) <-> cacheclip's
// canonical GGUF names (blk.N.attn_q.weight). One table serves the loader and the writer.
#pragma once
#include <string>

namespace cc {

// Canonical name of an HF tensor; unknown names come back unchanged (validation reports them).
std::string hf_to_canonical(const std::string& hf);
// HF name of a canonical tensor; throws cc::Error for a name with no HF counterpart.
std::string canonical_to_hf(const std::string& canonical);

}  // namespace cc
