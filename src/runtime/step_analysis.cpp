// The step analysis (see step_analysis.h): one pass over the ops for the readers, the
// graph's lifetimes, and the codecs of the registry checked against each saved tensor.
#include "adacc/runtime/step_analysis.h"

#include "adacc/ops/workspace.h"

namespace adacc::runtime {

using model::TensorId;
using model::TensorInfo;
using model::TensorKind;

int StepAnalysis::first_value_reader(const model::StepGraph& graph, TensorId id) const {
  for (int o : readers[index(id)]) {
    if (!graph.op(o).accepts_saved_form(model::SavedForm::gelu_derivative)) return o;
  }
  return -1;
}

bool StepAnalysis::admits(TensorId id, const compress::Codec& codec) const {
  for (const CodecChoice& c : codecs[index(id)]) {
    if (c.codec == &codec) return true;
  }
  return false;
}

StepAnalysis analyze_step(const model::StepGraph& graph) {
  const std::size_t n = graph.tensors().size();
  StepAnalysis a;
  a.lifetimes = model::analyze_lifetimes(graph);
  a.saved.assign(n, false);
  a.readers.resize(n);
  a.recomputable.assign(n, false);
  a.bytes.resize(n);
  a.codecs.resize(n);
  for (int o = 0; o < static_cast<int>(graph.ops().size()); ++o) {
    for (TensorId id : graph.op(o).saved()) {
      std::vector<int>& r = a.readers.at(static_cast<std::size_t>(id));
      if (r.empty() || r.back() != o) r.push_back(o);
      a.saved[static_cast<std::size_t>(id)] = true;
    }
  }
  std::vector<const compress::Codec*> registry;
  for (const std::string& name : compress::codec_names()) {
    registry.push_back(&compress::codec_by_name(name));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TensorId>(i);
    const TensorInfo& t = graph.tensor(id);
    a.bytes[i] = ops::accounted_bytes(t.nbytes());
    if (t.kind != TensorKind::activation) continue;
    a.recomputable[i] = t.producer >= 0 && graph.op(t.producer).recomputable();
    if (!a.saved[i] || t.dtype != DType::f32) continue;
    for (const compress::Codec* codec : registry) {
      if (!codec->applies_to(t.role)) continue;
      bool readable = true;
      for (int o : a.readers[i])
        readable = readable && graph.op(o).accepts_saved_form(codec->decodes_to());
      if (readable) {
        a.codecs[i].push_back({codec, ops::accounted_bytes(codec->encoded_bytes(t.shape))});
      }
    }
  }
  return a;
}

}  // namespace adacc::runtime
