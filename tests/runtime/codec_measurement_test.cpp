// runtime::measure_codecs on a small GPT-2: one result per saved, recomputable f32
// activation and codec meant for its role; the ratio is the byte ratio; every codec shows
// some error (the GELU-derivative codec measured on the derivative); and the
// weight-gradient error of a linear layer's
// input equals what a real step under a plan compressing only that tensor does to that
// layer's weight and bias gradients (the rest of the backward is unchanged by it).
#include "adacc/runtime/codec_measurement.h"

#include <gtest/gtest.h>

#include <cmath>

#include "adacc/compress/codec.h"
#include "adacc/runtime/plan.h"
#include "adacc/runtime/step_executor.h"
#include "reference/test_util.h"
#include "small_gpt2_fixture.h"

namespace adacc::runtime {
namespace {

class CodecMeasurementTest : public test::SmallGpt2 {
 protected:
  CodecMeasurementTest() : SmallGpt2(ops::AttentionKind::naive, 11) {}
};

TEST_F(CodecMeasurementTest, CoversEverySavedTensorAndApplicableCodec) {
  const auto ms = measure_codecs(graph_, gpt_.params(), ctx_, tokens_, targets_);
  std::size_t want = 0;
  for (std::size_t i = 0; i < graph_.tensors().size(); ++i) {
    const auto id = static_cast<model::TensorId>(i);
    const model::TensorInfo& t = graph_.tensor(id);
    if (t.kind != model::TensorKind::activation || !is_saved(graph_, id) ||
        !is_recomputable(graph_, id)) {
      continue;
    }
    want += compress::codecs_for_role(t.role).size();
  }
  EXPECT_EQ(ms.size(), want);
  bool saw_gelu = false, saw_softmax = false;
  for (const CodecMeasurement& m : ms) {
    const model::TensorInfo& t = graph_.tensor(m.tensor);
    const compress::Codec& c = compress::codec_by_name(m.codec);
    EXPECT_TRUE(c.applies_to(t.role)) << t.name << " " << m.codec;
    EXPECT_DOUBLE_EQ(
        m.ratio, static_cast<double>(t.nbytes()) / static_cast<double>(c.encoded_bytes(t.shape)));
    EXPECT_GT(m.tensor_error, 0.0) << t.name << " " << m.codec;  // every codec is lossy
    EXPECT_LT(m.tensor_error, 0.6) << t.name << " " << m.codec;
    EXPECT_TRUE(std::isfinite(m.grad_error)) << t.name << " " << m.codec;
    EXPECT_GE(m.encode_seconds, 0.0);
    saw_gelu = saw_gelu || m.codec == "gelu-deriv-u8";
    saw_softmax = saw_softmax || m.codec == "softmax-u8";
    if (m.codec == "gelu-deriv-u8") {
      EXPECT_LT(m.tensor_error, 1e-2) << "the derivative, not x, is what it approximates";
    }
  }
  EXPECT_TRUE(saw_gelu);
  EXPECT_TRUE(saw_softmax);
}

TEST_F(CodecMeasurementTest, LinearInputErrorsMatchARealStepUnderThatPlan) {
  const model::TensorId x_id = graph_.find("h1.ln2.out");  // the input of h1's fc layer
  for (const char* codec : {"int4-g64", "int8-g64", "fp8-e4m3"}) {
    const auto ms = measure_codecs(graph_, gpt_.params(), ctx_, tokens_, targets_, {codec});
    const CodecMeasurement* m = nullptr;
    for (const auto& r : ms) {
      if (r.tensor == x_id) m = &r;
    }
    ASSERT_NE(m, nullptr);

    // The step itself, keeping everything, then compressing h1.ln2.out only.
    const auto fc_grads = [&](const Plan& plan) {
      gpt_.grads().flat.zero();
      StepExecutor exec(graph_, gpt_.params(), gpt_.grads(), ctx_, plan);
      exec.forward_backward(tokens_, targets_);
      test::Vec g = test::to_vec(gpt_.grads().layers[1].fcw);
      const test::Vec b = test::to_vec(gpt_.grads().layers[1].fcb);
      g.insert(g.end(), b.begin(), b.end());
      return g;
    };
    const test::Vec ref = fc_grads(keep_all_plan(graph_));
    Plan plan = keep_all_plan(graph_);
    plan.decisions[static_cast<std::size_t>(x_id)] = {Policy::compress, codec};
    const test::Vec got = fc_grads(plan);
    const double step_error = test::rel_error(got, ref);
    EXPECT_GT(step_error, 0.0) << codec;
    EXPECT_NEAR(m->weight_grad_error, step_error, 1e-6 * step_error + 1e-9) << codec;
  }
}

}  // namespace
}  // namespace adacc::runtime
