// CPU kernels of lomit::instance_norm (schema: ../instance_norm.cpp). One task per plane (NCHW)
// or per sample (NHWC); a plane is read once per pass while it sits in cache.
//
//   forward:  y = act((x - mean) * rstd * w[c] + b[c])
//   backward: g = dy * act'(pre-activation), g_hat = g * w[c],
//             dx = rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)),
//             dweight[n, c] = sum(g * x_hat), dbias[n, c] = sum(g)   (per-sample partials)
#include "planes.h"

#include <torch/library.h>

namespace lomit::cpu {
namespace {

using at::Tensor;

// weight/bias as (C,) vectors in the compute dtype; None becomes 1 / 0.
Tensor channel_affine(const c10::optional<Tensor>& t, int64_t channels, at::ScalarType dtype,
                      double fill, const char* name) {
  if (!t.has_value()) return at::full({channels}, fill, at::TensorOptions().dtype(dtype));
  return small_arg(*t, {channels}, dtype, name);
}

std::tuple<Tensor, Tensor, Tensor> instance_norm_cpu(const Tensor& input,
                                                     const c10::optional<Tensor>& weight,
                                                     const c10::optional<Tensor>& bias, double eps,
                                                     c10::string_view activation,
                                                     double negative_slope) {
  const Planes p = dense_planes(input, "x");
  const Activation act = parse_activation(activation);
  Tensor y = at::empty_like(p.x);
  const auto stats_dtype = p.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  Tensor mean = at::empty({p.n, p.c}, p.x.options().dtype(stats_dtype));
  Tensor rstd = at::empty_like(mean);
  const Tensor w = channel_affine(weight, p.c, stats_dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, p.c, stats_dtype, 0.0, "bias");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "lomit::instance_norm", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    acc_t* mp = mean.mutable_data_ptr<acc_t>();
    acc_t* rp = rstd.mutable_data_ptr<acc_t>();
    const acc_t* wp = w.const_data_ptr<acc_t>();
    const acc_t* bp = b.const_data_ptr<acc_t>();
    const acc_t slope = acc_t(negative_slope);
    if (!p.channels_last) {
      at::parallel_for(0, p.n * p.c, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
        for (int64_t plane = begin; plane < end; ++plane) {
          const scalar_t* x = xp + plane * p.hw;
          scalar_t* out = yp + plane * p.hw;
          const auto [m, r] = plane_moments(x, p.hw, eps);
          const int64_t c = plane % p.c;
          const acc_t mu = acc_t(m), scale = acc_t(r) * wp[c], shift = bp[c];
          mp[plane] = acc_t(m), rp[plane] = acc_t(r);
          for (int64_t i = 0; i < p.hw; ++i)
            out[i] = scalar_t(activate((acc_t(x[i]) - mu) * scale + shift, act, slope));
        }
      });
      return;
    }
    at::parallel_for(0, p.n, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> m(p.c), r(p.c);
      std::vector<acc_t> mu(p.c), scale(p.c);
      for (int64_t n = begin; n < end; ++n) {
        const scalar_t* x = xp + n * p.hw * p.c;
        scalar_t* out = yp + n * p.hw * p.c;
        row_moments(x, p.hw, p.c, eps, m.data(), r.data());
        for (int64_t c = 0; c < p.c; ++c) {
          mu[c] = acc_t(m[c]), scale[c] = acc_t(r[c]) * wp[c];
          mp[n * p.c + c] = acc_t(m[c]), rp[n * p.c + c] = acc_t(r[c]);
        }
        for (int64_t i = 0; i < p.hw; ++i)
          for (int64_t c = 0; c < p.c; ++c) {
            const int64_t k = i * p.c + c;
            out[k] = scalar_t(activate((acc_t(x[k]) - mu[c]) * scale[c] + bp[c], act, slope));
          }
      }
    });
  });
  return {y, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> instance_norm_backward_cpu(
    const Tensor& grad, const Tensor& input, const c10::optional<Tensor>& weight,
    const c10::optional<Tensor>& bias, const Tensor& mean, const Tensor& rstd,
    c10::string_view activation, double negative_slope) {
  const Planes p = dense_planes(input, "x");
  const Tensor dy = like_layout(grad, p, "dy");
  const Activation act = parse_activation(activation);
  const auto stats_dtype = p.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const Tensor mu = small_arg(mean, {p.n, p.c}, stats_dtype, "mean");
  const Tensor rs = small_arg(rstd, {p.n, p.c}, stats_dtype, "rstd");
  const Tensor w = channel_affine(weight, p.c, stats_dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, p.c, stats_dtype, 0.0, "bias");
  Tensor dx = at::empty_like(p.x);
  Tensor dw = at::empty({p.n, p.c}, p.x.options().dtype(stats_dtype));
  Tensor db = at::empty_like(dw);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "lomit::instance_norm_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    const scalar_t* gp = dy.const_data_ptr<scalar_t>();
    scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
    const acc_t *mup = mu.const_data_ptr<acc_t>(), *rsp = rs.const_data_ptr<acc_t>();
    const acc_t *wp = w.const_data_ptr<acc_t>(), *bp = b.const_data_ptr<acc_t>();
    acc_t *dwp = dw.mutable_data_ptr<acc_t>(), *dbp = db.mutable_data_ptr<acc_t>();
    const acc_t slope = acc_t(negative_slope);
    // Element k of plane (n, c): x_hat, then g = dy * act'(x_hat * w + b).
    auto x_hat = [&](const scalar_t* x, int64_t k, int64_t nc) {
      return (acc_t(x[k]) - mup[nc]) * rsp[nc];
    };
    auto g_of = [&](acc_t xh, acc_t dyk, int64_t c) {
      return dyk * activate_grad(xh * wp[c] + bp[c], act, slope);
    };
    if (!p.channels_last) {
      at::parallel_for(0, p.n * p.c, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
        for (int64_t nc = begin; nc < end; ++nc) {
          const int64_t c = nc % p.c, off = nc * p.hw;
          const scalar_t *x = xp + off, *g = gp + off;
          double sum_g = 0, sum_gx = 0, sum_gw = 0, sum_gwx = 0;  // g_hat = g w summed as used
          for (int64_t i = 0; i < p.hw; ++i) {
            const acc_t xh = x_hat(x, i, nc), gi = g_of(xh, acc_t(g[i]), c);
            sum_g += gi, sum_gx += double(gi) * xh;
            sum_gw += gi * wp[c], sum_gwx += gi * wp[c] * xh;
          }
          dbp[nc] = acc_t(sum_g), dwp[nc] = acc_t(sum_gx);
          const acc_t a = acc_t(sum_gw / p.hw), bb = acc_t(sum_gwx / p.hw);
          for (int64_t i = 0; i < p.hw; ++i) {
            const acc_t xh = x_hat(x, i, nc), gi = g_of(xh, acc_t(g[i]), c);
            dxp[off + i] = scalar_t(rsp[nc] * (gi * wp[c] - a - xh * bb));
          }
        }
      });
    } else {
      at::parallel_for(0, p.n, 1, [&](int64_t begin, int64_t end) {
        std::vector<double> sum_g(p.c), sum_gx(p.c), sum_gw(p.c), sum_gwx(p.c);
        std::vector<acc_t> a(p.c), bb(p.c);
        for (int64_t n = begin; n < end; ++n) {
          const int64_t off = n * p.hw * p.c, nc0 = n * p.c;
          const scalar_t *x = xp + off, *g = gp + off;
          for (auto* v : {&sum_g, &sum_gx, &sum_gw, &sum_gwx}) std::fill(v->begin(), v->end(), 0.0);
          for (int64_t i = 0; i < p.hw; ++i)
            for (int64_t c = 0; c < p.c; ++c) {
              const int64_t k = i * p.c + c;
              const acc_t xh = x_hat(x, k, nc0 + c), gi = g_of(xh, acc_t(g[k]), c);
              sum_g[c] += gi, sum_gx[c] += double(gi) * xh;
              sum_gw[c] += gi * wp[c], sum_gwx[c] += gi * wp[c] * xh;
            }
          for (int64_t c = 0; c < p.c; ++c) {
            dbp[nc0 + c] = acc_t(sum_g[c]), dwp[nc0 + c] = acc_t(sum_gx[c]);
            a[c] = acc_t(sum_gw[c] / p.hw), bb[c] = acc_t(sum_gwx[c] / p.hw);
          }
          for (int64_t i = 0; i < p.hw; ++i)
            for (int64_t c = 0; c < p.c; ++c) {
              const int64_t k = i * p.c + c;
              const acc_t xh = x_hat(x, k, nc0 + c), gi = g_of(xh, acc_t(g[k]), c);
              dxp[off + k] = scalar_t(rsp[nc0 + c] * (gi * wp[c] - a[c] - xh * bb[c]));
            }
        }
      });
    }
  });
  const Tensor none = at::empty({0}, p.x.options().dtype(stats_dtype));
  return {dx, weight.has_value() ? dw : none, bias.has_value() ? db : none};
}

}  // namespace

TORCH_LIBRARY_IMPL(lomit, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
}

}  // namespace lomit::cpu
