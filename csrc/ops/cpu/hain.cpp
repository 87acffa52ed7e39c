// CPU kernels of lomit::hain (schema: ../hain.cpp). NCHW: one task per group of planes; NHWC:
// chunks of rows, channels innermost (planes.h). With ds = sigma_f - sigma_b and
// dm = mu_f - mu_b per (n, c) and m the pixel's mask:
//
//   forward:  out = x_hat * (sigma_b + m ds) + (mu_b + m dm)
//   backward: g_hat = dy * (sigma_b + m ds),
//             dc = rstd * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)),
//             dmask[n, p] = sum_c dy * (x_hat ds + dm),
//             dmu_f = sum(dy m), dmu_b = sum(dy) - dmu_f,
//             dsigma_f = sum(dy x_hat m), dsigma_b = sum(dy x_hat) - dsigma_f.
#include "planes.h"

#include <torch/library.h>

namespace lomit::cpu {
namespace {

using at::Tensor;

std::tuple<Tensor, Tensor, Tensor> hain_cpu(const Tensor& content, const Tensor& mask,
                                            const Tensor& mu_f, const Tensor& sigma_f,
                                            const Tensor& mu_b, const Tensor& sigma_b, double eps) {
  const Planes p = dense_planes(content, "c");
  const auto dtype = stats_dtype(p.x);
  const StyleArgs s = style_args(p.x, mask, mu_f, sigma_f, mu_b, sigma_b, dtype);
  Tensor out = at::empty_like(p.x);
  Tensor mean = at::empty({p.n, p.c}, p.x.options().dtype(dtype));
  Tensor rstd = at::empty_like(mean);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "lomit::hain", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const acc_t* mk = s.mask.const_data_ptr<acc_t>();
    const acc_t *mf = s.mu_f.const_data_ptr<acc_t>(), *sf = s.sigma_f.const_data_ptr<acc_t>();
    const acc_t *mb = s.mu_b.const_data_ptr<acc_t>(), *sb = s.sigma_b.const_data_ptr<acc_t>();
    acc_t *mp = mean.mutable_data_ptr<acc_t>(), *rp = rstd.mutable_data_ptr<acc_t>();
    if (!p.channels_last) {
      at::parallel_for(0, p.n * p.c, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
        for (int64_t nc = begin; nc < end; ++nc) {
          const scalar_t* x = xp + nc * p.hw;
          scalar_t* o = op + nc * p.hw;
          const acc_t* m = mk + (nc / p.c) * p.hw;
          const auto [mu, r] = plane_moments(x, p.hw, eps);
          mp[nc] = acc_t(mu), rp[nc] = acc_t(r);
          const acc_t center = acc_t(mu), scale = acc_t(r);
          const acc_t ds = sf[nc] - sb[nc], dm = mf[nc] - mb[nc], s0 = sb[nc], b0 = mb[nc];
          for (int64_t i = 0; i < p.hw; ++i)
            o[i] = scalar_t((acc_t(x[i]) - center) * scale * (s0 + m[i] * ds) + (b0 + m[i] * dm));
        }
      });
      return;
    }
    std::vector<double> mu, r;
    row_moments(p, xp, eps, mu, r);
    std::vector<acc_t> ds(p.n * p.c), dm(p.n * p.c);
    for (int64_t nc = 0; nc < p.n * p.c; ++nc) {
      mp[nc] = acc_t(mu[nc]), rp[nc] = acc_t(r[nc]);
      ds[nc] = sf[nc] - sb[nc], dm[nc] = mf[nc] - mb[nc];
    }
    for_row_chunks(p, [&](int64_t n, int64_t lo, int64_t hi) {
      // restrict: no runtime alias checks in front of every (short) row loop
      const int64_t nc0 = n * p.c;
      const acc_t *__restrict center = mp + nc0, *__restrict scale = rp + nc0;
      const acc_t *__restrict s0 = sb + nc0, *__restrict b0 = mb + nc0;
      const acc_t *__restrict d_s = ds.data() + nc0, *__restrict d_m = dm.data() + nc0;
      const scalar_t* __restrict x = xp + (n * p.hw + lo) * p.c;
      scalar_t* __restrict out = op + (n * p.hw + lo) * p.c;
      for (int64_t i = lo; i < hi; ++i, x += p.c, out += p.c) {
        const acc_t m = mk[n * p.hw + i];
        for (int64_t c = 0; c < p.c; ++c)
          out[c] = scalar_t((acc_t(x[c]) - center[c]) * scale[c] * (s0[c] + m * d_s[c])
                            + (b0[c] + m * d_m[c]));
      }
    });
  });
  return {out, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> hain_backward_cpu(
    const Tensor& grad, const Tensor& content, const Tensor& mask, const Tensor& mu_f,
    const Tensor& sigma_f, const Tensor& mu_b, const Tensor& sigma_b, const Tensor& mean,
    const Tensor& rstd) {
  const Planes p = dense_planes(content, "c");
  const Tensor dy = like_layout(grad, p, "dy");
  const auto dtype = stats_dtype(p.x);
  const StyleArgs s = style_args(p.x, mask, mu_f, sigma_f, mu_b, sigma_b, dtype);
  const Tensor mu = small_arg(mean, {p.n, p.c}, p.x, dtype, "mean");
  const Tensor rs = small_arg(rstd, {p.n, p.c}, p.x, dtype, "rstd");
  Tensor dc = at::empty_like(p.x);
  Tensor dmask = at::zeros({p.n, 1, content.size(2), content.size(3)},
                           p.x.options().dtype(dtype));
  Tensor dstyles = at::empty({4, p.n, p.c}, p.x.options().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(),
                                  "lomit::hain_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *xp = p.x.const_data_ptr<scalar_t>(), *gp = dy.const_data_ptr<scalar_t>();
    scalar_t* dcp = dc.mutable_data_ptr<scalar_t>();
    const acc_t* mk = s.mask.const_data_ptr<acc_t>();
    const acc_t *mf = s.mu_f.const_data_ptr<acc_t>(), *sf = s.sigma_f.const_data_ptr<acc_t>();
    const acc_t *mb = s.mu_b.const_data_ptr<acc_t>(), *sb = s.sigma_b.const_data_ptr<acc_t>();
    const acc_t *mup = mu.const_data_ptr<acc_t>(), *rsp = rs.const_data_ptr<acc_t>();
    acc_t* dmp = dmask.mutable_data_ptr<acc_t>();
    acc_t* dsp = dstyles.mutable_data_ptr<acc_t>();
    const int64_t np = p.n * p.c;
    // Six sums per plane, consecutive doubles: dy, dy m, dy x_hat, dy x_hat m (the style
    // gradients) and g_hat, g_hat x_hat (the two means dc needs). g_hat is summed as dc uses
    // it, so that g_hat - mean(g_hat) is exact where it must be 0 (planes of one pixel).
    constexpr int kSums = 6;
    auto add = [](double* t, double gi, double m, double xh, double g_hat) {
      t[0] += gi, t[1] += gi * m, t[2] += gi * xh, t[3] += gi * xh * m;
      t[4] += g_hat, t[5] += g_hat * xh;
    };
    auto finish = [&](int64_t nc, const double* t, acc_t& a, acc_t& b) {
      dsp[nc] = acc_t(t[1]), dsp[2 * np + nc] = acc_t(t[0] - t[1]);
      dsp[np + nc] = acc_t(t[3]), dsp[3 * np + nc] = acc_t(t[2] - t[3]);
      a = acc_t(t[4] / p.hw), b = acc_t(t[5] / p.hw);  // mean(g_hat), mean(g_hat * x_hat)
    };
    if (!p.channels_last) {
      at::parallel_for(0, np, plane_grain(p.hw), [&](int64_t begin, int64_t end) {
        for (int64_t nc = begin; nc < end; ++nc) {
          const int64_t off = nc * p.hw;
          const scalar_t *x = xp + off, *g = gp + off;
          const acc_t* m = mk + (nc / p.c) * p.hw;
          const acc_t center = mup[nc], scale = rsp[nc], s0 = sb[nc], ds = sf[nc] - sb[nc];
          const auto t = sums_of<kSums, acc_t>(p.hw, [&](int64_t i, acc_t* v) {
            const acc_t xh = (acc_t(x[i]) - center) * scale, gi = acc_t(g[i]);
            const acc_t g_hat = gi * (s0 + m[i] * ds);
            v[0] = gi, v[1] = gi * m[i], v[2] = gi * xh, v[3] = gi * xh * m[i];
            v[4] = g_hat, v[5] = g_hat * xh;
          });
          acc_t a, b;
          finish(nc, t.data(), a, b);
          for (int64_t i = 0; i < p.hw; ++i) {
            const acc_t xh = (acc_t(x[i]) - center) * scale;
            dcp[off + i] = scalar_t(scale * (acc_t(g[i]) * (s0 + m[i] * ds) - a - xh * b));
          }
        }
      });
      // dmask sums over channels: one task per (sample, block of pixels), channels inside.
      constexpr int64_t kBlock = 256;
      const int64_t blocks = (p.hw + kBlock - 1) / kBlock;
      at::parallel_for(0, p.n * blocks, 1, [&](int64_t begin, int64_t end) {
        double acc[kBlock];
        for (int64_t task = begin; task < end; ++task) {
          const int64_t n = task / blocks, lo = (task % blocks) * kBlock;
          const int64_t len = std::min(kBlock, p.hw - lo);
          std::fill(acc, acc + len, 0.0);
          for (int64_t c = 0; c < p.c; ++c) {
            const int64_t nc = n * p.c + c, off = nc * p.hw + lo;
            const acc_t center = mup[nc], scale = rsp[nc];
            const acc_t ds = sf[nc] - sb[nc], dm = mf[nc] - mb[nc];
            for (int64_t i = 0; i < len; ++i)
              acc[i] += acc_t(gp[off + i]) * ((acc_t(xp[off + i]) - center) * scale * ds + dm);
          }
          for (int64_t i = 0; i < len; ++i) dmp[n * p.hw + lo + i] = acc_t(acc[i]);
        }
      });
      return;
    }
    const int64_t C = p.c;
    const auto totals = sum_row_chunks(p, kSums * C, [&](int64_t n, int64_t lo, int64_t hi,
                                                          double* acc) {
      for (int64_t i = lo; i < hi; ++i) {
        const acc_t m = mk[n * p.hw + i];
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = (n * p.hw + i) * C + c, nc = n * C + c;
          const acc_t xh = (acc_t(xp[k]) - mup[nc]) * rsp[nc], gi = acc_t(gp[k]);
          add(acc + c * kSums, gi, m, xh, gi * (sb[nc] + m * (sf[nc] - sb[nc])));
        }
      }
    });
    std::vector<acc_t> a(p.n * C), b(p.n * C);
    for (int64_t nc = 0; nc < p.n * C; ++nc)
      finish(nc, totals.data() + nc * kSums, a[nc], b[nc]);
    for_row_chunks(p, [&](int64_t n, int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const acc_t m = mk[n * p.hw + i];
        double dmask_i = 0;
        for (int64_t c = 0; c < C; ++c) {
          const int64_t k = (n * p.hw + i) * C + c, nc = n * C + c;
          const acc_t xh = (acc_t(xp[k]) - mup[nc]) * rsp[nc], gi = acc_t(gp[k]);
          const acc_t ds = sf[nc] - sb[nc], dm = mf[nc] - mb[nc];
          dcp[k] = scalar_t(rsp[nc] * (gi * (sb[nc] + m * ds) - a[nc] - xh * b[nc]));
          dmask_i += double(gi) * (xh * ds + dm);
        }
        dmp[n * p.hw + i] = acc_t(dmask_i);
      }
    });
  });
  return {dc, dmask, dstyles};
}

}  // namespace

TORCH_LIBRARY_IMPL(lomit, CPU, m) {
  m.impl("hain", &hain_cpu);
  m.impl("hain_backward", &hain_backward_cpu);
}

}  // namespace lomit::cpu
