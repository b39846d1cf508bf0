/* Amp-Space Wave2WaveNet runtime in C: block streaming and offline inference of an export.
 *
 * One file, C99 with GCC/Clang vector extensions, no dependencies beyond libc/libm; build it
 * with e.g. `cc -O3 -march=native -shared -fPIC -o libampspace_w2w.so w2w.c -lm` and call it
 * from a plugin, a host or (as ampspace.runtime.c_runtime does) ctypes.
 *
 * The model file (`model.w2w`, written by `python -m ampspace.runtime.export` next to model.npz) is:
 *   8 bytes  magic "AMPW2W01"
 *   7 int32  L (layers), k (kernel), C (channels), S (skip), H (head), K (classes), D (cond)
 *   L int32  dilations
 *   float32  the export's arrays in this order and shape (little endian, row major):
 *            input_w[C] input_b[C] conv_w[L][k*C][2C] conv_b[L][2C] cond_w[L][D][2C]
 *            res_w[L][C][C] res_b[L][C] skip_w[L][C][S] skip_b[L][S] head1_w[S][H] head1_b[H]
 *            head2_w[H][K] head2_b[K] and, when K > 1, class_centers[K]
 * (ampspace/runtime/export_format.py defines the format; tests/test_export_format.py checks this file's
 * magic, array order and sizes and default smoothing against it).
 *
 * The computation is the NumPy runtime's (ampspace/runtime/export_runtime.py) and the training
 * model's: per layer a gated dilated convolution (kernel k) whose filter and gate get the
 * conditioning projection as a bias, residual and skip 1x1 convolutions, then
 * relu -> 1x1 -> relu -> 1x1 to K logits, decoded as the expected value of the class centres
 * (or argmax). Streaming keeps the last dilation*(k-1) inputs of every layer; blocks may have
 * any length; a new conditioning vector is reached by a linear ramp of `smoothing` samples.
 *
 * Speed: channel counts are padded to multiples of 16 so that one row of a layer is whole
 * 512-bit vectors (two 256-bit ones without AVX-512); the matrix products are register-blocked
 * tiles (rows x vectors)
 * with the weights streamed from L1; tanh is a rational approximation accurate to a few ulp
 * and exp (softmax) a range-reduced polynomial, both vectorised. Nothing allocates while
 * processing blocks no longer than the largest block seen so far (or made room for with
 * w2w_reserve), nor in w2w_reset or w2w_set_conditioning: a plugin's audio thread may call them.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A plugin that includes this file defines W2W_API as `static` first, so that the runtime's
 * symbols stay private to it and two plugins in one host cannot resolve to each other's copy. */
#ifndef W2W_API
#define W2W_API __attribute__((visibility("default")))
#endif
#define INLINE static inline __attribute__((always_inline))

/* Rows are padded to PAD floats; a vector holds VL of them, the machine's register width:
 * 16 with AVX-512, 8 with AVX2, else 4 (SSE, NEON). Register tiles scale with VL. */
#define PAD 16
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
#define NH (PAD / VL) /* vectors per padded row */
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

#define LOADV(p) (*(const vf *)(p))
#define STOREV(p, v) (*(vf *)(p) = (v))

static int padded(int n) { return (n + PAD - 1) / PAD * PAD; }

static float *falloc(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
  memset(p, 0, (n ? n : 1) * sizeof(float));
  return (float *)p;
}

typedef struct w2w {
  int L, k, C, S, H, K, D;      /* as exported */
  int Cp, Sp, Hp, Kp;           /* padded to multiples of 16 */
  int *dil, *shrink;
  /* weights, padded; the gate half of conv_* is pre-scaled by 1/2 (sigmoid(g) =
   * (1 + tanh(g/2)) / 2) and res/skip by 1/2 (they take 2 * tanh(f) * sigmoid(g)) */
  float *input_w, *input_b;     /* [Cp] */
  float *conv_w;                /* [L][k][Cp][2Cp] */
  float *conv_b;                /* [L][2Cp] */
  float *cond_w;                /* [L][D][2Cp] */
  float *rs_w, *rs_b;           /* [L][Cp][Cp+Sp], [L][Cp+Sp] */
  float *h1_w, *h1_b;           /* [Sp][Hp], [Hp] */
  float *h2_w, *h2_b;           /* [Hp][Kp], [Kp] (padded classes get -1e30) */
  float *centers;               /* [Kp] */
  /* conditioning */
  float *c;                     /* [D] */
  float *p_to, *p_from;         /* [L][2Cp] */
  int smoothing, ramp_pos, decode;
  /* state */
  int cap, off;
  float **bufs;                 /* per layer [shrink + cap + 1][Cp] */
  float *xbuf;                  /* the input samples, rows as bufs[0]'s */
  float *u0, *c0;               /* layer 0 taps of the input: [k][2Cp], and their constant [2Cp] */
  float *skip;                  /* [cap][Sp] */
  float *ramp;                  /* [cap] */
  float *tile;                  /* scratch, head tiles */
} w2w_t;

/* ------------------------------------------------------------------ vector math */
INLINE vf vsplat(float x) { return (vf){0} + x; }
INLINE vf vselect(vi mask, vf a, vf b) { /* mask ? a : b, lane by lane */
  return (vf)(((vi)a & mask) | ((vi)b & ~mask));
}
#if defined(__AVX512F__)
#include <immintrin.h>
INLINE vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
INLINE vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
#elif defined(__AVX__)
#include <immintrin.h>
INLINE vf vmin(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
INLINE vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
#else
INLINE vf vmin(vf a, vf b) { return vselect(a < b, a, b); }
INLINE vf vmax(vf a, vf b) { return vselect(a > b, a, b); }
#endif

/* tanh(x) = x P(x^2) / Q(x^2), P of degree 4 and Q of degree 3: a rational minimax fit on
 * [0, 7.905] (clamped outside, where tanh is 1 to within 2.7e-7); absolute error below 5e-7
 * in float arithmetic, on par with the clamp. */
INLINE void vtanh_pq(vf x, vf *p, vf *q) {
  const float lim = 7.90531110763549805f;
  x = vmin(vmax(x, vsplat(-lim)), vsplat(lim));
  vf x2 = x * x;
  vf a = vsplat(-6.133644259165294e-09f);
  a = a * x2 + 7.147143151087221e-06f;
  a = a * x2 + 0.002693051705136895f;
  a = a * x2 + 0.12708242237567902f;
  a = a * x2 + 0.9999991655349731f;
  *p = a * x;
  vf b = vsplat(0.0001963934046216309f);
  b = b * x2 + 0.02283395268023014f;
  b = b * x2 + 0.4604126513004303f;
  *q = b * x2 + 1.0f;
}

/* The gate times two, tanh(f) * (1 + tanh(h)) with h = g/2 (= 2 tanh(f) sigmoid(g)), with one
 * division: (pf/qf) (qh + ph)/qh = pf (qh + ph) / (qf qh). */
INLINE vf vgate2(vf f, vf h) {
  vf pf, qf, ph, qh;
  vtanh_pq(f, &pf, &qf);
  vtanh_pq(h, &ph, &qh);
  return pf * (qh + ph) / (qf * qh);
}

/* exp for x <= 0 (softmax after subtracting the max): 2^n * poly(r), |r| <= ln2/2. */
INLINE vf vexp_neg(vf x) {
  x = vmax(x, vsplat(-87.0f));
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  vf t = x * 1.44269504088896341f;
  vf n = (t + magic) - magic;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf y = vsplat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  return y * (vf)e;
}

/* ------------------------------------------------------------------ matrix tiles
 * acc[r][v] += sum_kk A[r*lda + kk] * W[kk*ldw + v*VL .. +VL], for R rows and NV vectors.
 * R and NV are compile-time constants at every call site, so acc lives in registers. */
INLINE void mm_acc(const int R, const int NV, int kdim, const float *A, int lda,
                   const float *W, int ldw, vf *acc) {
  for (int kk = 0; kk < kdim; ++kk) {
    const float *w = W + (size_t)kk * ldw;
    vf wv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) wv[v] = LOADV(w + v * VL);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      vf a = vsplat(A[(size_t)r * lda + kk]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r * NV + v] += a * wv[v];
    }
  }
}

/* out[r][0..VL*NV) = bias + A[r] @ W, optional relu, R rows; bias NULL: out += A[r] @ W. */
INLINE void gemm_tile(const int R, const int NV, int kdim, const float *A, int lda,
                      const float *W, int ldw, const float *bias, float *out, int ldo, int relu) {
  vf acc[16 * 4];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      acc[r * NV + v] = bias ? LOADV(bias + v * VL) : LOADV(out + (size_t)r * ldo + v * VL);
  mm_acc(R, NV, kdim, A, lda, W, ldw, acc);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      vf y = acc[r * NV + v];
      if (relu) y = vmax(y, vsplat(0.0f));
      STOREV(out + (size_t)r * ldo + v * VL, y);
    }
}

/* Rows per tile for 3-4 and 1-2 vectors of columns: 16 accumulators with 32 registers. */
#define TR4 (VL == 16 ? 4 : VL == 8 ? 2 : 1)
#define TR2 (VL == 16 ? 8 : VL == 8 ? 4 : 2)

/* out[rows][ncols] = bias + A[rows][kdim] @ W[kdim][ncols] (ncols a multiple of 16); with
 * bias NULL, out += A @ W. */
static void gemm(int rows, int kdim, const float *A, int lda, const float *W, int ldw,
                 int ncols, const float *bias, float *out, int ldo, int relu) {
  for (int c0 = 0; c0 < ncols; c0 += 4 * VL) {
    int nv = (ncols - c0) / VL;
    if (nv > 4) nv = 4;
    const float *w = W + c0, *b = bias ? bias + c0 : NULL;
    float *o = out + c0;
    int r = 0;
#define ROW_TILES(RR, NVV)                                                                     \
  for (; r + RR <= rows; r += RR)                                                            \
    gemm_tile(RR, NVV, kdim, A + (size_t)r * lda, lda, w, ldw, b, o + (size_t)r * ldo, ldo, relu); \
  for (; r < rows; ++r)                                                                      \
    gemm_tile(1, NVV, kdim, A + (size_t)r * lda, lda, w, ldw, b, o + (size_t)r * ldo, ldo, relu);
    switch (nv) { /* constant tile shapes, so the accumulators stay in registers */
      case 4: ROW_TILES(TR4, 4) break;
      case 3: ROW_TILES(TR4, 3) break;
      case 2: ROW_TILES(TR2, 2) break;
      default: ROW_TILES(TR2, 1)
    }
#undef ROW_TILES
  }
}

/* ------------------------------------------------------------------ one layer
 * For rows t of the block: pre = bias(t) + sum_j buf[off + t + j*d] @ Wj; z2 = tanh(f) *
 * (1 + tanh(g/2)) (= 2 z); rs = z2 @ rs_w + rs_b; next[t] = cur[t] + rs[:Cp]; skip[t] += rs[Cp:].
 * The fast path (Cp == Sp == 16: a row is one AVX-512 vector, or two narrower ones) keeps a
 * tile of R rows in registers from the convolution through the gate; other widths go through
 * the generic gemm. */
INLINE void layer_tile16(const int R, w2w_t *m, int l, int t0, int ramping) {
  const int Cp = PAD, k = m->k, d = m->dil[l], NV = 2 * NH;
  const float *buf = m->bufs[l] + (size_t)(m->off + t0) * Cp;
  const float *Wl = m->conv_w + (size_t)l * k * Cp * 2 * Cp;
  const float *p_to = m->p_to + (size_t)l * 2 * Cp;
  vf acc[8 * 2 * NH], bias[2 * NH], delta[2 * NH];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    bias[v] = LOADV(p_to + v * VL);
    if (l == 0) bias[v] += LOADV(m->c0 + v * VL); /* layer 0: see u0 below */
  }
  if (ramping) {
    const float *p_from = m->p_from + (size_t)l * 2 * Cp;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) delta[v] = LOADV(p_from + v * VL) - LOADV(p_to + v * VL);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float a = m->ramp[t0 + r];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r * NV + v] = bias[v] + a * delta[v];
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r * NV + v] = bias[v];
  }
  if (l == 0) /* layer 0's input is x * input_w + input_b: rank one, k taps of x suffice */
    for (int j = 0; j < k; ++j)
      mm_acc(R, NV, 1, m->xbuf + m->off + t0 + (size_t)j * d, 1, m->u0 + (size_t)j * 2 * Cp,
             2 * Cp, acc);
  else
    for (int j = 0; j < k; ++j)
      mm_acc(R, NV, Cp, buf + (size_t)j * d * Cp, Cp, Wl + (size_t)j * Cp * 2 * Cp, 2 * Cp, acc);
  float z[8 * PAD] __attribute__((aligned(64)));
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h)
      STOREV(z + r * Cp + h * VL, vgate2(acc[r * NV + h], acc[r * NV + NH + h]));
  /* residual and skip: [R][16] @ [16][32]; the last layer's residual is never used */
  const float *rw = m->rs_w + (size_t)l * Cp * 2 * Cp;
  const float *rb = m->rs_b + (size_t)l * 2 * Cp;
  const float *cur = m->bufs[l] + (size_t)(m->off + m->shrink[l] + t0) * Cp;
  float *skip = m->skip + (size_t)t0 * Cp;
  if (l == m->L - 1) {
    vf acc1[8 * NH];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h) acc1[r * NH + h] = LOADV(rb + Cp + h * VL);
    mm_acc(R, NH, Cp, z, Cp, rw + Cp, 2 * Cp, acc1);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h)
        STOREV(skip + r * Cp + h * VL, LOADV(skip + r * Cp + h * VL) + acc1[r * NH + h]);
    return;
  }
  vf acc2[8 * 2 * NH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc2[r * NV + v] = LOADV(rb + v * VL);
  mm_acc(R, NV, Cp, z, Cp, rw, 2 * Cp, acc2);
  float *nxt = m->bufs[l + 1] + (size_t)(m->off + m->shrink[l + 1] + t0) * Cp;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) {
      STOREV(skip + r * Cp + h * VL, LOADV(skip + r * Cp + h * VL) + acc2[r * NV + NH + h]);
      STOREV(nxt + r * Cp + h * VL, LOADV(cur + r * Cp + h * VL) + acc2[r * NV + h]);
    }
}

static void layer_generic(w2w_t *m, int l, int B, int ramping, float *H, float *RS) {
  const int Cp = m->Cp, Sp = m->Sp, k = m->k, d = m->dil[l], N = 2 * Cp;
  const float *buf = m->bufs[l] + (size_t)m->off * Cp;
  const float *Wl = m->conv_w + (size_t)l * k * Cp * N;
  const float *p_to = m->p_to + (size_t)l * N, *p_from = m->p_from + (size_t)l * N;
  for (int t = 0; t < B; ++t) {
    float a = ramping ? m->ramp[t] : 0.0f;
    for (int i = 0; i < N; ++i) H[(size_t)t * N + i] = p_to[i] + a * (p_from[i] - p_to[i]);
  }
  for (int j = 0; j < k; ++j)
    gemm(B, Cp, buf + (size_t)j * d * Cp, Cp, Wl + (size_t)j * Cp * N, N, N, NULL, H, N, 0);
  for (int t = 0; t < B; ++t)
    for (int v = 0; v < Cp; v += VL) {
      float *h = H + (size_t)t * N;
      STOREV(h + v, vgate2(LOADV(h + v), LOADV(h + Cp + v)));
    }
  gemm(B, Cp, H, N, m->rs_w + (size_t)l * Cp * (Cp + Sp), Cp + Sp, Cp + Sp,
       m->rs_b + (size_t)l * (Cp + Sp), RS, Cp + Sp, 0);
  const float *cur = m->bufs[l] + (size_t)(m->off + m->shrink[l]) * Cp;
  for (int t = 0; t < B; ++t) {
    const float *rs = RS + (size_t)t * (Cp + Sp);
    for (int v = 0; v < Sp; v += VL)
      STOREV(m->skip + (size_t)t * Sp + v, LOADV(m->skip + (size_t)t * Sp + v) + LOADV(rs + Cp + v));
    if (l < m->L - 1) {
      float *nxt = m->bufs[l + 1] + (size_t)(m->off + m->shrink[l + 1] + t) * Cp;
      for (int v = 0; v < Cp; v += VL) STOREV(nxt + v, LOADV(cur + (size_t)t * Cp + v) + LOADV(rs + v));
    }
  }
}

/* ------------------------------------------------------------------ head and decoding */
static void head(w2w_t *m, int B, float *out) {
  const int Sp = m->Sp, Hp = m->Hp, Kp = m->Kp;
  const int TR = 16; /* rows per head tile */
  float *hd = m->tile, *lg = m->tile + (size_t)TR * Hp;
  for (int t0 = 0; t0 < B; t0 += TR) {
    int rows = B - t0 < TR ? B - t0 : TR;
    float *s = m->skip + (size_t)t0 * Sp;
    for (int i = 0; i < rows * Sp; i += VL) STOREV(s + i, vmax(LOADV(s + i), vsplat(0.0f)));
    gemm(rows, Sp, s, Sp, m->h1_w, Hp, Hp, m->h1_b, hd, Hp, 1);
    gemm(rows, Hp, hd, Hp, m->h2_w, Kp, Kp, m->h2_b, lg, Kp, 0);
    for (int r = 0; r < rows; ++r) {
      const float *z = lg + (size_t)r * Kp;
      if (m->K == 1) {
        out[t0 + r] = z[0];
        continue;
      }
      vf mx = LOADV(z);
      for (int v = VL; v < Kp; v += VL) mx = vmax(mx, LOADV(z + v));
      float M = mx[0];
      for (int i = 1; i < VL; ++i) M = mx[i] > M ? mx[i] : M;
      if (m->decode) { /* argmax: the first maximal class */
        int best = 0;
        for (int i = 0; i < m->K; ++i)
          if (z[i] == M) { best = i; break; }
        out[t0 + r] = m->centers[best];
        continue;
      }
      vf num = vsplat(0.0f), den = vsplat(0.0f);
      for (int v = 0; v < Kp; v += VL) {
        vf e = vexp_neg(LOADV(z + v) - M);
        num += e * LOADV(m->centers + v);
        den += e;
      }
      float sn = 0.0f, sd = 0.0f;
      for (int i = 0; i < VL; ++i) {
        sn += num[i];
        sd += den[i];
      }
      out[t0 + r] = sn / sd;
    }
  }
}

/* ------------------------------------------------------------------ state */
static void free_state(w2w_t *m) {
  if (m->bufs)
    for (int l = 0; l < m->L; ++l) free(m->bufs[l]);
  free(m->bufs);
  free(m->xbuf);
  free(m->skip);
  free(m->ramp);
  free(m->tile);
  m->bufs = NULL;
  m->xbuf = m->skip = m->ramp = m->tile = NULL;
}

/* (Re)allocates the buffers for blocks of up to cap samples, keeping each layer's history. */
static int alloc_state(w2w_t *m, int cap) {
  float **bufs = calloc((size_t)m->L, sizeof(float *));
  float *skip = falloc((size_t)cap * m->Sp), *ramp = falloc((size_t)cap);
  size_t tile = (size_t)16 * (m->Hp + m->Kp);
  size_t gen = (size_t)cap * (2 * m->Cp + m->Cp + m->Sp); /* the generic layer's H and RS */
  float *scratch = falloc(tile > gen ? tile : gen);
  float *xbuf = falloc((size_t)m->shrink[0] + cap + 1);
  int ok = bufs && skip && ramp && scratch && xbuf;
  if (ok && m->xbuf) memcpy(xbuf, m->xbuf + m->off, (size_t)m->shrink[0] * sizeof(float));
  for (int l = 0; ok && l < m->L; ++l) {
    bufs[l] = falloc((size_t)(m->shrink[l] + cap + 1) * m->Cp);
    ok = bufs[l] != NULL;
    if (ok && m->bufs) /* keep the history */
      memcpy(bufs[l], m->bufs[l] + (size_t)m->off * m->Cp,
             (size_t)m->shrink[l] * m->Cp * sizeof(float));
  }
  if (!ok) {
    if (bufs)
      for (int l = 0; l < m->L; ++l) free(bufs[l]);
    free(bufs);
    free(skip);
    free(ramp);
    free(scratch);
    free(xbuf);
    return -1;
  }
  free_state(m);
  m->bufs = bufs;
  m->xbuf = xbuf;
  m->skip = skip;
  m->ramp = ramp;
  m->tile = scratch;
  m->cap = cap;
  m->off = 0;
  return 0;
}

static void project(const w2w_t *m, const float *c, float *p) {
  const int N = 2 * m->Cp;
  for (int l = 0; l < m->L; ++l) {
    float *pl = p + (size_t)l * N;
    memcpy(pl, m->conv_b + (size_t)l * N, N * sizeof(float));
    for (int i = 0; i < m->D; ++i) {
      const float *w = m->cond_w + ((size_t)l * m->D + i) * N;
      for (int o = 0; o < N; ++o) pl[o] += c[i] * w[o];
    }
  }
}

/* The state after an endless run of silence at the current conditioning. Allocates nothing
 * (its vectors live in the block scratch, which holds at least 256 * (3 Cp + Sp) floats), so a
 * real-time host may call it from its audio thread. */
W2W_API void w2w_reset(w2w_t *m) {
  const int Cp = m->Cp, k = m->k, N = 2 * Cp;
  float *h = m->tile, *pre = h + Cp, *z = pre + N;
  memcpy(h, m->input_b, Cp * sizeof(float));
  memset(m->xbuf, 0, (size_t)m->shrink[0] * sizeof(float));
  for (int l = 0; l < m->L; ++l) {
    float *buf = m->bufs[l];
    for (int s = 0; s < m->shrink[l]; ++s) memcpy(buf + (size_t)s * Cp, h, Cp * sizeof(float));
    memcpy(pre, m->p_to + (size_t)l * N, N * sizeof(float));
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < Cp; ++i) {
        const float *w = m->conv_w + (((size_t)l * k + j) * Cp + i) * N;
        for (int o = 0; o < N; ++o) pre[o] += h[i] * w[o];
      }
    for (int i = 0; i < Cp; ++i) z[i] = tanhf(pre[i]) * (1.0f + tanhf(pre[Cp + i]));
    const float *rw = m->rs_w + (size_t)l * Cp * (Cp + m->Sp), *rb = m->rs_b + (size_t)l * (Cp + m->Sp);
    for (int o = 0; o < Cp; ++o) {
      float acc = rb[o];
      for (int i = 0; i < Cp; ++i) acc += z[i] * rw[(size_t)i * (Cp + m->Sp) + o];
      pre[o] = acc;
    }
    for (int o = 0; o < Cp; ++o) h[o] += pre[o];
  }
  m->off = 0;
  memcpy(m->p_from, m->p_to, (size_t)m->L * N * sizeof(float));
  m->ramp_pos = m->smoothing > 1 ? m->smoothing : 1;
}

/* ------------------------------------------------------------------ public API */
W2W_API void w2w_free(w2w_t *m) {
  if (!m) return;
  free_state(m);
  free(m->dil);
  free(m->shrink);
  float *arrays[] = {m->input_w, m->input_b, m->conv_w, m->conv_b, m->cond_w, m->rs_w, m->rs_b,
                     m->h1_w, m->h1_b, m->h2_w, m->h2_b, m->centers, m->c, m->p_to, m->p_from,
                     m->u0, m->c0};
  for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); ++i) free(arrays[i]);
  free(m);
}

static void set_err(char *err, int len, const char *msg) {
  if (err && len > 0) snprintf(err, (size_t)len, "%s", msg);
}

/* dims = {L, k, C, S, H, K, D}; arrays in the file order (see the top of this file). */
W2W_API w2w_t *w2w_create(const int32_t *dims, const int32_t *dilations, const float *const *a,
                          char *err, int errlen) {
  int L = dims[0], k = dims[1], C = dims[2], S = dims[3], H = dims[4], K = dims[5], D = dims[6];
  if (L < 1 || k < 1 || C < 1 || S < 1 || H < 1 || K < 1 || D < 0 || L > 4096 || C > 4096 ||
      S > 4096 || H > 4096 || K > 65536 || k > 64 || D > 1 << 20) {
    set_err(err, errlen, "implausible model dimensions");
    return NULL;
  }
  for (int l = 0; l < L; ++l)
    if (dilations[l] < 1 || dilations[l] > 1 << 20) {
      set_err(err, errlen, "dilations must be between 1 and 2^20");
      return NULL;
    }
  w2w_t *m = calloc(1, sizeof(w2w_t));
  if (!m) return NULL;
  m->L = L, m->k = k, m->C = C, m->S = S, m->H = H, m->K = K, m->D = D;
  int Cp = m->Cp = padded(C), Sp = m->Sp = padded(S), Hp = m->Hp = padded(H), Kp = m->Kp = padded(K);
  int N = 2 * Cp;
  m->dil = calloc((size_t)L, sizeof(int));
  m->shrink = calloc((size_t)L, sizeof(int));
  m->input_w = falloc(Cp), m->input_b = falloc(Cp);
  m->conv_w = falloc((size_t)L * k * Cp * N), m->conv_b = falloc((size_t)L * N);
  m->cond_w = falloc((size_t)L * D * N);
  m->rs_w = falloc((size_t)L * Cp * (Cp + Sp)), m->rs_b = falloc((size_t)L * (Cp + Sp));
  m->h1_w = falloc((size_t)Sp * Hp), m->h1_b = falloc(Hp);
  m->h2_w = falloc((size_t)Hp * Kp), m->h2_b = falloc(Kp), m->centers = falloc(Kp);
  m->c = falloc(D), m->p_to = falloc((size_t)L * N), m->p_from = falloc((size_t)L * N);
  m->u0 = falloc((size_t)k * N), m->c0 = falloc(N);
  if (!m->u0 || !m->c0 || !m->dil || !m->shrink || !m->input_w || !m->input_b || !m->conv_w || !m->conv_b ||
      !m->cond_w || !m->rs_w || !m->rs_b || !m->h1_w || !m->h1_b || !m->h2_w || !m->h2_b ||
      !m->centers || !m->c || !m->p_to || !m->p_from) {
    set_err(err, errlen, "out of memory");
    w2w_free(m);
    return NULL;
  }
  for (int l = 0; l < L; ++l) m->dil[l] = dilations[l], m->shrink[l] = dilations[l] * (k - 1);
  const float *input_w = a[0], *input_b = a[1], *conv_w = a[2], *conv_b = a[3], *cond_w = a[4];
  const float *res_w = a[5], *res_b = a[6], *skip_w = a[7], *skip_b = a[8];
  const float *h1_w = a[9], *h1_b = a[10], *h2_w = a[11], *h2_b = a[12];
  const float *centers = K > 1 ? a[13] : NULL;
  memcpy(m->input_w, input_w, C * sizeof(float));
  memcpy(m->input_b, input_b, C * sizeof(float));
  for (int l = 0; l < L; ++l) {
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < C; ++i)
        for (int o = 0; o < 2 * C; ++o) {
          float w = conv_w[(((size_t)l * k + j) * C + i) * 2 * C + o];
          int oo = o < C ? o : Cp + (o - C);
          m->conv_w[(((size_t)l * k + j) * Cp + i) * N + oo] = o < C ? w : 0.5f * w;
        }
    for (int o = 0; o < 2 * C; ++o) {
      int oo = o < C ? o : Cp + (o - C);
      float s = o < C ? 1.0f : 0.5f;
      m->conv_b[(size_t)l * N + oo] = s * conv_b[(size_t)l * 2 * C + o];
      for (int i = 0; i < D; ++i)
        m->cond_w[((size_t)l * D + i) * N + oo] = s * cond_w[((size_t)l * D + i) * 2 * C + o];
    }
    float *rw = m->rs_w + (size_t)l * Cp * (Cp + Sp), *rb = m->rs_b + (size_t)l * (Cp + Sp);
    for (int i = 0; i < C; ++i) {
      for (int o = 0; o < C; ++o) rw[(size_t)i * (Cp + Sp) + o] = 0.5f * res_w[((size_t)l * C + i) * C + o];
      for (int o = 0; o < S; ++o)
        rw[(size_t)i * (Cp + Sp) + Cp + o] = 0.5f * skip_w[((size_t)l * C + i) * S + o];
    }
    for (int o = 0; o < C; ++o) rb[o] = res_b[(size_t)l * C + o];
    for (int o = 0; o < S; ++o) rb[Cp + o] = skip_b[(size_t)l * S + o];
  }
  for (int i = 0; i < S; ++i) memcpy(m->h1_w + (size_t)i * Hp, h1_w + (size_t)i * H, H * sizeof(float));
  memcpy(m->h1_b, h1_b, H * sizeof(float));
  for (int i = 0; i < H; ++i) memcpy(m->h2_w + (size_t)i * Kp, h2_w + (size_t)i * K, K * sizeof(float));
  for (int o = 0; o < Kp; ++o) m->h2_b[o] = o < K ? h2_b[o] : -1e30f;
  if (centers) memcpy(m->centers, centers, K * sizeof(float));
  for (int j = 0; j < k; ++j) /* layer 0 through the input's rank-one map */
    for (int i = 0; i < Cp; ++i)
      for (int o = 0; o < N; ++o) {
        float w = m->conv_w[((size_t)j * Cp + i) * N + o];
        m->u0[(size_t)j * N + o] += m->input_w[i] * w;
        m->c0[o] += m->input_b[i] * w;
      }
  m->smoothing = 1024;
  project(m, m->c, m->p_to);
  if (alloc_state(m, 256) != 0) {
    set_err(err, errlen, "out of memory");
    w2w_free(m);
    return NULL;
  }
  w2w_reset(m);
  return m;
}

/* Reads a model file (format at the top of this file). */
W2W_API w2w_t *w2w_load(const char *path, char *err, int errlen) {
  char msg[512];
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(msg, sizeof msg, "%s: cannot open", path);
    set_err(err, errlen, msg);
    return NULL;
  }
  char magic[8];
  int32_t dims[7];
  w2w_t *m = NULL;
  int32_t *dil = NULL;
  float *data = NULL;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "AMPW2W01", 8) != 0) {
    snprintf(msg, sizeof msg, "%s: not an Amp-Space Wave2WaveNet model file (bad magic)", path);
    goto fail;
  }
  if (fread(dims, sizeof(int32_t), 7, f) != 7 || dims[0] < 1 || dims[0] > 4096) {
    snprintf(msg, sizeof msg, "%s: truncated or corrupt header", path);
    goto fail;
  }
  int L = dims[0], k = dims[1], C = dims[2], S = dims[3], H = dims[4], K = dims[5], D = dims[6];
  dil = malloc((size_t)L * sizeof(int32_t));
  if (!dil || fread(dil, sizeof(int32_t), (size_t)L, f) != (size_t)L) {
    snprintf(msg, sizeof msg, "%s: truncated header", path);
    goto fail;
  }
  size_t sizes[14] = {(size_t)C, (size_t)C, (size_t)L * k * C * 2 * C, (size_t)L * 2 * C,
                      (size_t)L * D * 2 * C, (size_t)L * C * C, (size_t)L * C, (size_t)L * C * S,
                      (size_t)L * S, (size_t)S * H, (size_t)H, (size_t)H * K, (size_t)K,
                      K > 1 ? (size_t)K : 0};
  size_t total = 0;
  for (int i = 0; i < 14; ++i) total += sizes[i];
  if (total > ((size_t)1 << 31)) {
    snprintf(msg, sizeof msg, "%s: implausible model dimensions", path);
    goto fail;
  }
  data = malloc((total ? total : 1) * sizeof(float));
  if (!data || fread(data, sizeof(float), total, f) != total) {
    snprintf(msg, sizeof msg, "%s: truncated weights (expected %zu floats)", path, total);
    goto fail;
  }
  if (fgetc(f) != EOF) {
    snprintf(msg, sizeof msg, "%s: trailing bytes after the weights", path);
    goto fail;
  }
  for (size_t i = 0; i < total; ++i)
    if (!isfinite(data[i])) {
      snprintf(msg, sizeof msg, "%s: weights are not all finite", path);
      goto fail;
    }
  const float *arrays[14];
  size_t at = 0;
  for (int i = 0; i < 14; ++i) arrays[i] = data + at, at += sizes[i];
  m = w2w_create(dims, dil, arrays, msg, sizeof msg);
  if (!m) goto fail;
  fclose(f);
  free(dil);
  free(data);
  return m;
fail:
  set_err(err, errlen, msg);
  fclose(f);
  free(dil);
  free(data);
  return NULL;
}

/* Sizes the buffers for blocks of up to max_block samples now, so that w2w_process allocates
 * nothing for them: a real-time host calls this before its audio thread runs. 0, or -1 when
 * out of memory. */
W2W_API int w2w_reserve(w2w_t *m, int max_block) {
  return max_block > m->cap ? alloc_state(m, max_block) : 0;
}

W2W_API int w2w_cond_dim(const w2w_t *m) { return m->D; }
W2W_API void w2w_set_smoothing(w2w_t *m, int samples) { m->smoothing = samples < 0 ? 0 : samples; }
W2W_API void w2w_set_decode(w2w_t *m, int argmax) { m->decode = argmax != 0; }

/* New conditioning. ramp != 0: reached by a linear ramp over `smoothing` samples from where the
 * current ramp is; ramp == 0: at once (for a fresh stream, before w2w_reset). */
W2W_API void w2w_set_conditioning(w2w_t *m, const float *c, int ramp) {
  const size_t n = (size_t)m->L * 2 * m->Cp;
  if (ramp && m->D && memcmp(c, m->c, (size_t)m->D * sizeof(float)) == 0) return;
  if (ramp && m->smoothing > 0) {
    float a = (float)m->ramp_pos / (float)m->smoothing;
    if (a > 1.0f) a = 1.0f;
    for (size_t i = 0; i < n; ++i) m->p_from[i] += (m->p_to[i] - m->p_from[i]) * a;
    m->ramp_pos = 0;
  }
  if (m->D) memcpy(m->c, c, (size_t)m->D * sizeof(float));
  project(m, m->c, m->p_to);
  if (!ramp || m->smoothing == 0) {
    memcpy(m->p_from, m->p_to, n * sizeof(float));
    m->ramp_pos = m->smoothing > 1 ? m->smoothing : 1;
  }
}

/* Output samples for n input samples, continuing the stream; returns 0, or -1 when out of
 * memory (the state is then unchanged). in and out may be the same array. */
W2W_API int w2w_process(w2w_t *m, const float *in, float *out, int n) {
  if (n <= 0) return 0;
  if (n > m->cap && alloc_state(m, n > 2 * m->cap ? n : 2 * m->cap) != 0) return -1;
  const int Cp = m->Cp;
  if (m->off + n > m->cap) { /* move each layer's history to the front */
    for (int l = 0; l < m->L; ++l)
      memmove(m->bufs[l], m->bufs[l] + (size_t)m->off * Cp, (size_t)m->shrink[l] * Cp * sizeof(float));
    memmove(m->xbuf, m->xbuf + m->off, (size_t)m->shrink[0] * sizeof(float));
    m->off = 0;
  }
  int ramping = m->ramp_pos < m->smoothing;
  if (ramping) {
    for (int t = 0; t < n; ++t) {
      float a = (float)(m->ramp_pos + 1 + t) / (float)m->smoothing;
      m->ramp[t] = 1.0f - (a < 1.0f ? a : 1.0f);
    }
    m->ramp_pos = m->ramp_pos + n < m->smoothing ? m->ramp_pos + n : m->smoothing;
  }
  float *h0 = m->bufs[0] + (size_t)(m->off + m->shrink[0]) * Cp;
  memcpy(m->xbuf + m->off + m->shrink[0], in, (size_t)n * sizeof(float));
  for (int t = 0; t < n; ++t)
    for (int v = 0; v < Cp; v += VL)
      STOREV(h0 + (size_t)t * Cp + v, in[t] * LOADV(m->input_w + v) + LOADV(m->input_b + v));
  memset(m->skip, 0, (size_t)n * m->Sp * sizeof(float));
  for (int l = 0; l < m->L; ++l) {
    if (Cp == PAD && m->Sp == PAD) {
      const int R = VL == 16 ? 8 : VL == 8 ? 2 : 1; /* 2 R NH accumulators, 2 NH weights */
      int t = 0;
      for (; t + R <= n; t += R) layer_tile16(R, m, l, t, ramping);
      for (; t < n; ++t) layer_tile16(1, m, l, t, ramping);
    } else {
      float *H = m->tile, *RS = m->tile + (size_t)m->cap * 2 * Cp;
      layer_generic(m, l, n, ramping, H, RS);
    }
  }
  m->off += n;
  head(m, n, out);
  return 0;
}
