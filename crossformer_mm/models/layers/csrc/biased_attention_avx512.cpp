// Biased softmax attention on CPU with AVX-512, head_dim 32, fp32:
//   O = softmax(q k^T * scale + M) v   (and the log-sum-exp of each score row).
// Built and loaded by crossformer_mm/models/layers/cpu_attention.py (ctypes; no
// Python or torch headers).
// Forward: for each (group, head) pair, k^T * scale is packed once; then, for
// R <= 10 query rows at a time, the R x N scores are formed in registers (20 zmm
// accumulators per 32 keys, the mask as their initial value), the exact softmax
// is taken over the whole row (max, exp, sum; no online rescaling), and P v is
// accumulated in registers. The score rows of a tile stay in L1/L2.
// Backward: P = exp(S - lse) is recomputed the same way and, per tile,
//   dS = P * (dO v^T - rowsum(dO * O)),  dq = dS k * scale,
//   dk += dS^T q * scale,  dv += P^T dO,  dM += dS
// (dq of a tile is complete; dk, dv accumulate over the tiles of the pair in its
// own rows of the outputs; dM is added to in place: the caller never runs pairs
// that share a mask entry concurrently).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

namespace {
constexpr int D = 32;         // head_dim
constexpr int MAX_ROWS = 10;  // query rows per tile
constexpr int KEYS = 32;      // keys per score block (2 zmm)

// exp(x), |rel. error| ~1e-7 (Cephes expf polynomial); x below -87.3 is
// clamped there (exp stays a normal float; masked and padded keys get ~1e-38).
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 lanes(int count) {  // the first min(max(count, 0), 16) lanes
  return count >= 16 ? (__mmask16)0xFFFF : count > 0 ? (__mmask16)((1u << count) - 1) : 0;
}

// dst (D x Np) = src^T * scale, src: N rows of D floats, row stride `row`; keys >= N: 0
void pack_transposed(const float *src, int64_t row, int N, int Np, float scale, float *dst) {
  for (int c = 0; c < D; ++c) {
    float *out = dst + (int64_t)c * Np;
    for (int j = 0; j < N; ++j) out[j] = src[(int64_t)j * row + c] * scale;
    for (int j = N; j < Np; ++j) out[j] = 0.f;
  }
}

// acc[r] (2 zmm per row) += sum_c a[r][c] * bt[c][j .. j + 32): the 32-key block
// of R rows times a packed D x Np operand
template <int R>
inline void block_product(const float *const *a, const float *bt, int Np, int j,
                          __m512 (&acc)[R][2]) {
#pragma GCC unroll 8
  for (int c = 0; c < D; ++c) {
    const __m512 b0 = _mm512_loadu_ps(bt + (int64_t)c * Np + j);
    const __m512 b1 = _mm512_loadu_ps(bt + (int64_t)c * Np + j + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 ac = _mm512_set1_ps(a[r][c]);
      acc[r][0] = _mm512_fmadd_ps(ac, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ac, b1, acc[r][1]);
    }
  }
}

// out[r] (2 zmm) = sum_{j < N} w[r][j] * rows[j]: R rows of weights (stride Np)
// times N rows of D floats (row stride `row`)
template <int R>
inline void weighted_rows(const float *w, int Np, const float *rows, int64_t row, int N,
                          __m512 (&out)[R][2]) {
  for (int r = 0; r < R; ++r) out[r][0] = out[r][1] = _mm512_setzero_ps();
  for (int j = 0; j < N; ++j) {
    const float *x = rows + (int64_t)j * row;
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 wj = _mm512_set1_ps(w[r * Np + j]);
      out[r][0] = _mm512_fmadd_ps(wj, x0, out[r][0]);
      out[r][1] = _mm512_fmadd_ps(wj, x1, out[r][1]);
    }
  }
}

// rows[j] (D floats, row stride `row`) += sum_r w[r][j] * x[r] for j < N; x: R rows in registers
template <int R>
inline void add_outer(const float *w, int Np, const __m512 (&x)[R][2], int N, float *rows,
                      int64_t row) {
  for (int j = 0; j < N; ++j) {
    float *y = rows + (int64_t)j * row;
    __m512 y0 = _mm512_loadu_ps(y), y1 = _mm512_loadu_ps(y + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 wj = _mm512_set1_ps(w[r * Np + j]);
      y0 = _mm512_fmadd_ps(wj, x[r][0], y0);
      y1 = _mm512_fmadd_ps(wj, x[r][1], y1);
    }
    _mm512_storeu_ps(y, y0);
    _mm512_storeu_ps(y + 16, y1);
  }
}

struct Pair {  // one (group, head): row pointers and row strides (elements)
  const float *q, *k, *v, *m, *dout, *lse, *delta;
  float *o, *row_lse, *dq, *dk, *dv, *dm;
  int64_t qkv_row, m_row, o_row, dout_row, grad_row, dm_row;
};

// masks of the valid keys of the 32-key block at j
inline void block_lanes(int N, int j, __mmask16 &lo, __mmask16 &hi) {
  lo = lanes(N - j);
  hi = lanes(N - j - 16);
}

// acc = M[rows i0.., keys j..j+32) (-inf beyond N) + q kt
template <int R>
inline void biased_scores(const Pair &p, const float *const *q, const float *kt, int N, int Np,
                          int i0, int j, __m512 (&acc)[R][2]) {
  __mmask16 lo, hi;
  block_lanes(N, j, lo, hi);
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  for (int r = 0; r < R; ++r) {
    const float *mask = p.m + (int64_t)(i0 + r) * p.m_row + j;
    acc[r][0] = _mm512_mask_loadu_ps(neg_inf, lo, mask);
    acc[r][1] = _mm512_mask_loadu_ps(neg_inf, hi, mask + 16);
  }
  block_product<R>(q, kt, Np, j, acc);
}

// Forward of query rows [i0, i0 + R). kt: k^T * scale (D x Np); S: R x Np scratch.
template <int R>
void forward_tile(const Pair &p, const float *kt, int N, int Np, int i0, float *S) {
  const float *q[R];
  __m512 row_max[R];
  for (int r = 0; r < R; ++r) {
    q[r] = p.q + (int64_t)(i0 + r) * p.qkv_row;
    row_max[r] = _mm512_set1_ps(-INFINITY);
  }
  for (int j = 0; j < Np; j += KEYS) {
    __m512 acc[R][2];
    biased_scores<R>(p, q, kt, N, Np, i0, j, acc);
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(S + r * Np + j, acc[r][0]);
      _mm512_storeu_ps(S + r * Np + j + 16, acc[r][1]);
      row_max[r] = _mm512_max_ps(row_max[r], _mm512_max_ps(acc[r][0], acc[r][1]));
    }
  }
  float inv_sum[R];
  for (int r = 0; r < R; ++r) {  // S <- exp(S - max), unnormalised
    const float mx = _mm512_reduce_max_ps(row_max[r]);
    const __m512 vmx = _mm512_set1_ps(mx);
    __m512 sum = _mm512_setzero_ps();
    float *s = S + r * Np;
    for (int j = 0; j < Np; j += 16) {
      const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vmx));
      _mm512_storeu_ps(s + j, e);
      sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(lanes(N - j), e));
    }
    const float total = _mm512_reduce_add_ps(sum);
    inv_sum[r] = 1.0f / total;
    if (p.row_lse) p.row_lse[i0 + r] = mx + logf(total);
  }
  __m512 out[R][2];
  weighted_rows<R>(S, Np, p.v, p.qkv_row, N, out);
  for (int r = 0; r < R; ++r) {
    float *o = p.o + (int64_t)(i0 + r) * p.o_row;
    const __m512 scale = _mm512_set1_ps(inv_sum[r]);
    _mm512_storeu_ps(o, _mm512_mul_ps(out[r][0], scale));
    _mm512_storeu_ps(o + 16, _mm512_mul_ps(out[r][1], scale));
  }
}

// Backward of query rows [i0, i0 + R). kt: k^T * scale, vt: v^T (D x Np);
// P, dS: R x Np scratch.
template <int R>
void backward_tile(const Pair &p, const float *kt, const float *vt, int N, int Np, int i0,
                   float scale, float *P, float *dS) {
  const float *q[R], *dout[R];
  for (int r = 0; r < R; ++r) {
    q[r] = p.q + (int64_t)(i0 + r) * p.qkv_row;
    dout[r] = p.dout + (int64_t)(i0 + r) * p.dout_row;
  }
  for (int j = 0; j < Np; j += KEYS) {
    __m512 acc[R][2];
    biased_scores<R>(p, q, kt, N, Np, i0, j, acc);
    for (int r = 0; r < R; ++r) {  // P = exp(S - lse)
      const __m512 lse = _mm512_set1_ps(p.lse[i0 + r]);
      _mm512_storeu_ps(P + r * Np + j, exp512(_mm512_sub_ps(acc[r][0], lse)));
      _mm512_storeu_ps(P + r * Np + j + 16, exp512(_mm512_sub_ps(acc[r][1], lse)));
      acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    }
    block_product<R>(dout, vt, Np, j, acc);  // dP = dO v^T
    __mmask16 lo, hi;
    block_lanes(N, j, lo, hi);
    for (int r = 0; r < R; ++r) {  // dS = P * (dP - delta); dM += dS
      const __m512 delta = _mm512_set1_ps(p.delta[i0 + r]);
      const float *pr = P + r * Np + j;
      const __m512 ds0 = _mm512_mul_ps(_mm512_loadu_ps(pr), _mm512_sub_ps(acc[r][0], delta));
      const __m512 ds1 = _mm512_mul_ps(_mm512_loadu_ps(pr + 16), _mm512_sub_ps(acc[r][1], delta));
      _mm512_storeu_ps(dS + r * Np + j, ds0);
      _mm512_storeu_ps(dS + r * Np + j + 16, ds1);
      float *dm = p.dm + (int64_t)(i0 + r) * p.dm_row + j;
      _mm512_mask_storeu_ps(dm, lo, _mm512_add_ps(_mm512_maskz_loadu_ps(lo, dm), ds0));
      _mm512_mask_storeu_ps(dm + 16, hi, _mm512_add_ps(_mm512_maskz_loadu_ps(hi, dm + 16), ds1));
    }
  }
  __m512 rows[R][2];
  weighted_rows<R>(dS, Np, p.k, p.qkv_row, N, rows);  // dq = dS k * scale
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r) {
    float *dq = p.dq + (int64_t)(i0 + r) * p.grad_row;
    _mm512_storeu_ps(dq, _mm512_mul_ps(rows[r][0], vscale));
    _mm512_storeu_ps(dq + 16, _mm512_mul_ps(rows[r][1], vscale));
  }
  for (int r = 0; r < R; ++r) {
    rows[r][0] = _mm512_loadu_ps(dout[r]);
    rows[r][1] = _mm512_loadu_ps(dout[r] + 16);
  }
  add_outer<R>(P, Np, rows, N, p.dv, p.grad_row);  // dv += P^T dO
  for (int r = 0; r < R; ++r) {
    rows[r][0] = _mm512_mul_ps(_mm512_loadu_ps(q[r]), vscale);
    rows[r][1] = _mm512_mul_ps(_mm512_loadu_ps(q[r] + 16), vscale);
  }
  add_outer<R>(dS, Np, rows, N, p.dk, p.grad_row);  // dk += dS^T q * scale
}

typedef void (*ForwardFn)(const Pair &, const float *, int, int, int, float *);
typedef void (*BackwardFn)(const Pair &, const float *, const float *, int, int, int, float,
                           float *, float *);
const ForwardFn FORWARD[MAX_ROWS + 1] = {
    nullptr, forward_tile<1>, forward_tile<2>, forward_tile<3>, forward_tile<4>, forward_tile<5>,
    forward_tile<6>, forward_tile<7>, forward_tile<8>, forward_tile<9>, forward_tile<10>};
const BackwardFn BACKWARD[MAX_ROWS + 1] = {
    nullptr, backward_tile<1>, backward_tile<2>, backward_tile<3>, backward_tile<4>,
    backward_tile<5>, backward_tile<6>, backward_tile<7>, backward_tile<8>, backward_tile<9>,
    backward_tile<10>};

int tile_rows(int N) {  // balanced tiles: 49 tokens = 4 x 10 + 9 rows
  const int tiles = (N + MAX_ROWS - 1) / MAX_ROWS;
  return (N + tiles - 1) / tiles;
}

float *scratch(int rows, int Np) {
  return (float *)aligned_alloc(64, sizeof(float) * (size_t)rows * Np);
}
}  // namespace

extern "C" {
// Layouts (element offsets; the last dimension is contiguous, head_dim 32):
//   q, k, v (g, h, n, c): base + g*s_g + h*s_h + n*s_n + c (views of one qkv tensor);
//   mask (g, h, i, j): m + (g % m_period)*m_g + h*m_h + i*m_n + j;
//   out (g, h, n, c): o + g*o_g + h*o_h + n*o_n + c; lse: (G, H, N) contiguous or NULL.
// Computes the (group, head) pairs [begin, end) of G x H. Returns 0, or -1 when
// the scratch memory cannot be allocated.
int cfmm_biased_attention_fwd(const float *q, const float *k, const float *v, int64_t s_g,
                              int64_t s_h, int64_t s_n, const float *m, int64_t m_period,
                              int64_t m_g, int64_t m_h, int64_t m_n, float *o, int64_t o_g,
                              int64_t o_h, int64_t o_n, float *lse, int H, int N, float scale,
                              int64_t begin, int64_t end) {
  const int Np = (N + KEYS - 1) / KEYS * KEYS, rows = tile_rows(N);
  float *kt = scratch(D, Np), *S = scratch(MAX_ROWS, Np);
  if (!kt || !S) {
    free(kt);
    free(S);
    return -1;
  }
  for (int64_t pair = begin; pair < end; ++pair) {
    const int64_t g = pair / H, h = pair % H;
    Pair p = {};
    p.q = q + g * s_g + h * s_h;
    p.v = v + g * s_g + h * s_h;
    p.m = m + (g % m_period) * m_g + h * m_h;
    p.o = o + g * o_g + h * o_h;
    p.row_lse = lse ? lse + pair * N : nullptr;
    p.qkv_row = s_n;
    p.m_row = m_n;
    p.o_row = o_n;
    pack_transposed(k + g * s_g + h * s_h, s_n, N, Np, scale, kt);
    for (int i0 = 0; i0 < N; i0 += rows)
      FORWARD[N - i0 < rows ? N - i0 : rows](p, kt, N, Np, i0, S);
  }
  free(kt);
  free(S);
  return 0;
}

// Gradients of cfmm_biased_attention_fwd. q, k, v, mask as there; dout (g, h, n, c):
// d + g*d_g + h*d_h + n*d_n + c; lse, delta (= rowsum(dout * out)): (G, H, N)
// contiguous. Writes dq, dk, dv (g, h, n, c): base + g*r_g + h*r_h + n*r_n + c,
// and adds dS to dm (the mask's layout: dm + (g % m_period)*dm_g + h*dm_h + i*dm_n + j).
// Computes the pairs [begin, end) of G x H, numbered g * H + h, or h * G + g with
// head_major. Pairs that add to the same dm entry must not run concurrently.
int cfmm_biased_attention_bwd(const float *q, const float *k, const float *v, int64_t s_g,
                              int64_t s_h, int64_t s_n, const float *m, int64_t m_period,
                              int64_t m_g, int64_t m_h, int64_t m_n, const float *dout,
                              int64_t d_g, int64_t d_h, int64_t d_n, const float *lse,
                              const float *delta, float *dq, float *dk, float *dv, int64_t r_g,
                              int64_t r_h, int64_t r_n, int G, int H, int N, float scale,
                              int head_major, float *dm, int64_t dm_g, int64_t dm_h, int64_t dm_n,
                              int64_t begin, int64_t end) {
  const int Np = (N + KEYS - 1) / KEYS * KEYS, rows = tile_rows(N);
  float *kt = scratch(D, Np), *vt = scratch(D, Np);
  float *P = scratch(MAX_ROWS, Np), *dS = scratch(MAX_ROWS, Np);
  if (!kt || !vt || !P || !dS) {
    free(kt);
    free(vt);
    free(P);
    free(dS);
    return -1;
  }
  for (int64_t index = begin; index < end; ++index) {
    const int64_t g = head_major ? index % G : index / H, h = head_major ? index / G : index % H;
    const int64_t pair = g * H + h;
    Pair p = {};
    p.q = q + g * s_g + h * s_h;
    p.k = k + g * s_g + h * s_h;
    p.m = m + (g % m_period) * m_g + h * m_h;
    p.dout = dout + g * d_g + h * d_h;
    p.lse = lse + pair * N;
    p.delta = delta + pair * N;
    p.dq = dq + g * r_g + h * r_h;
    p.dk = dk + g * r_g + h * r_h;
    p.dv = dv + g * r_g + h * r_h;
    p.dm = dm + (g % m_period) * dm_g + h * dm_h;
    p.qkv_row = s_n;
    p.m_row = m_n;
    p.dout_row = d_n;
    p.grad_row = r_n;
    p.dm_row = dm_n;
    pack_transposed(p.k, s_n, N, Np, scale, kt);
    pack_transposed(v + g * s_g + h * s_h, s_n, N, Np, 1.0f, vt);
    for (int j = 0; j < N; ++j) {
      memset(p.dk + (int64_t)j * r_n, 0, sizeof(float) * D);
      memset(p.dv + (int64_t)j * r_n, 0, sizeof(float) * D);
    }
    for (int i0 = 0; i0 < N; i0 += rows)
      BACKWARD[N - i0 < rows ? N - i0 : rows](p, kt, vt, N, Np, i0, scale, P, dS);
  }
  free(kt);
  free(vt);
  free(P);
  free(dS);
  return 0;
}
}
