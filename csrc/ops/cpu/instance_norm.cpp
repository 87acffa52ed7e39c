// CPU kernels of lomit::instance_norm (schema: ../instance_norm.cpp). NCHW: one task per group of
// planes, each plane read once per pass while it sits in cache. NHWC: chunks of rows, channels
// innermost (planes.h).
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

std::tuple<Tensor, Tensor, Tensor> instance_norm_cpu(const Tensor& input,
                                                     const c10::optional<Tensor>& weight,
                                                     const c10::optional<Tensor>& bias, double eps,
                                                     c10::string_view activation,
                                                     double negative_slope) {
  const Planes p = dense_planes(input, "x");
  const Activation act = parse_activation(activation);
  Tensor y = at::empty_like(p.x);
  const auto dtype = stats_dtype(p.x);
  Tensor mean = at::empty({p.n, p.c}, p.x.options().dtype(dtype));
  Tensor rstd = at::empty_like(mean);
  const Tensor w = channel_affine(weight, p.x, dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, p.x, dtype, 0.0, "bias");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "lomit::instance_norm", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    acc_t *mp = mean.mutable_data_ptr<acc_t>(), *rp = rstd.mutable_data_ptr<acc_t>();
    const acc_t *wp = w.const_data_ptr<acc_t>(), *bp = b.const_data_ptr<acc_t>();
    const acc_t slope = acc_t(negative_slope);
    with_activation(act, [&](auto A) {
      if (!p.channels_last) {
        at::parallel_for(0, p.n * p.c, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
          for (int64_t nc = begin; nc < end; ++nc) {
            const scalar_t* x = xp + nc * p.hw;
            scalar_t* out = yp + nc * p.hw;
            const auto [m, r] = plane_moments(x, p.hw, eps);
            const int64_t c = nc % p.c;
            const acc_t mu = acc_t(m), scale = acc_t(r) * wp[c], shift = bp[c];
            mp[nc] = acc_t(m), rp[nc] = acc_t(r);
            for (int64_t i = 0; i < p.hw; ++i)
              out[i] = scalar_t(activate<A.value>((acc_t(x[i]) - mu) * scale + shift, slope));
          }
        });
        return;
      }
      std::vector<double> m, r;
      row_moments(p, xp, eps, m, r);
      std::vector<acc_t> scale(p.n * p.c);
      for (int64_t nc = 0; nc < p.n * p.c; ++nc)
        mp[nc] = acc_t(m[nc]), rp[nc] = acc_t(r[nc]), scale[nc] = acc_t(r[nc]) * wp[nc % p.c];
      for_row_chunks(p, [&](int64_t n, int64_t lo, int64_t hi) {
        // restrict: no runtime alias checks in front of every (short) row loop
        const acc_t *__restrict mu = mp + n * p.c, *__restrict sc = scale.data() + n * p.c;
        const acc_t* __restrict shift = bp;
        const scalar_t* __restrict x = xp + (n * p.hw + lo) * p.c;
        scalar_t* __restrict out = yp + (n * p.hw + lo) * p.c;
        for (int64_t i = lo; i < hi; ++i, x += p.c, out += p.c)
          for (int64_t c = 0; c < p.c; ++c)
            out[c] = scalar_t(activate<A.value>((acc_t(x[c]) - mu[c]) * sc[c] + shift[c], slope));
      });
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
  const auto dtype = stats_dtype(p.x);
  const Tensor mu = small_arg(mean, {p.n, p.c}, p.x, dtype, "mean");
  const Tensor rs = small_arg(rstd, {p.n, p.c}, p.x, dtype, "rstd");
  const Tensor w = channel_affine(weight, p.x, dtype, 1.0, "weight");
  const Tensor b = channel_affine(bias, p.x, dtype, 0.0, "bias");
  Tensor dx = at::empty_like(p.x);
  Tensor dw = at::empty({p.n, p.c}, p.x.options().dtype(dtype));
  Tensor db = at::empty_like(dw);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "lomit::instance_norm_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *xp = p.x.const_data_ptr<scalar_t>(), *gp = dy.const_data_ptr<scalar_t>();
    scalar_t* dxp = dx.mutable_data_ptr<scalar_t>();
    const acc_t *mup = mu.const_data_ptr<acc_t>(), *rsp = rs.const_data_ptr<acc_t>();
    const acc_t *wp = w.const_data_ptr<acc_t>(), *bp = b.const_data_ptr<acc_t>();
    acc_t *dwp = dw.mutable_data_ptr<acc_t>(), *dbp = db.mutable_data_ptr<acc_t>();
    const acc_t slope = acc_t(negative_slope);
    with_activation(act, [&](auto A) {
      // Element k of plane nc (channel c): x_hat, and g = dy * act'(x_hat * w + b).
      auto x_hat = [&](int64_t k, int64_t nc) { return (acc_t(xp[k]) - mup[nc]) * rsp[nc]; };
      auto g_of = [&](acc_t xh, int64_t k, int64_t c) {
        return acc_t(gp[k]) * activate_grad<A.value>(xh * wp[c] + bp[c], slope);
      };
      // The four sums of a plane; g_hat = g w is summed as dx uses it, so that
      // g_hat - mean(g_hat) is exact where it must be 0 (planes of one pixel).
      auto finish = [&](int64_t nc, double sum_g, double sum_gx, double sum_gw, double sum_gwx,
                        acc_t& a, acc_t& bb) {
        dbp[nc] = acc_t(sum_g), dwp[nc] = acc_t(sum_gx);
        a = acc_t(sum_gw / p.hw), bb = acc_t(sum_gwx / p.hw);
      };
      if (!p.channels_last) {
        at::parallel_for(0, p.n * p.c, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
          for (int64_t nc = begin; nc < end; ++nc) {
            const int64_t c = nc % p.c, off = nc * p.hw;
            const auto sums = sums_of<4, acc_t>(p.hw, [&](int64_t i, acc_t* v) {
              const acc_t xh = x_hat(off + i, nc), gi = g_of(xh, off + i, c), gw = gi * wp[c];
              v[0] = gi, v[1] = gi * xh, v[2] = gw, v[3] = gw * xh;
            });
            acc_t a, bb;
            finish(nc, sums[0], sums[1], sums[2], sums[3], a, bb);
            for (int64_t k = off; k < off + p.hw; ++k) {
              const acc_t xh = x_hat(k, nc);
              dxp[k] = scalar_t(rsp[nc] * (g_of(xh, k, c) * wp[c] - a - xh * bb));
            }
          }
        });
        return;
      }
      const int64_t C = p.c;
      const auto sums = sum_row_chunks(p, 4 * C, [&](int64_t n, int64_t lo, int64_t hi, double* s) {
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t k = (n * p.hw + i) * C + c;
            const acc_t xh = x_hat(k, n * C + c), gi = g_of(xh, k, c), gw = gi * wp[c];
            s[c] += gi, s[C + c] += double(gi) * xh, s[2 * C + c] += gw;
            s[3 * C + c] += double(gw) * xh;
          }
      });
      std::vector<acc_t> a(p.n * C), bb(p.n * C);
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t c = 0; c < C; ++c) {
          const double* s = sums.data() + n * 4 * C;
          finish(n * C + c, s[c], s[C + c], s[2 * C + c], s[3 * C + c], a[n * C + c],
                 bb[n * C + c]);
        }
      for_row_chunks(p, [&](int64_t n, int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t k = (n * p.hw + i) * C + c, nc = n * C + c;
            const acc_t xh = x_hat(k, nc);
            dxp[k] = scalar_t(rsp[nc] * (g_of(xh, k, c) * wp[c] - a[nc] - xh * bb[nc]));
          }
      });
    });
  });
  const Tensor none = at::empty({0}, p.x.options().dtype(dtype));
  return {dx, weight.has_value() ? dw : none, bias.has_value() ? db : none};
}

}  // namespace

TORCH_LIBRARY_IMPL(lomit, CPU, m) {
  m.impl("instance_norm", &instance_norm_cpu);
  m.impl("instance_norm_backward", &instance_norm_backward_cpu);
}

}  // namespace lomit::cpu
