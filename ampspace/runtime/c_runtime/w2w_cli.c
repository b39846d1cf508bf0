/* A minimal command-line host for the C runtime: raw float32 mono in, raw float32 mono out.
 *
 *   cc -O3 -march=native -o w2w_cli w2w_cli.c -lm          (w2w.c beside it is included)
 *   sox di.wav -t f32 -c 1 - | ./w2w_cli model.w2w 64 | sox -t f32 -r 44100 -c 1 - out.wav
 *
 * Arguments: the model file, the block size (default 64), then the conditioning vector's
 * values (a `fixed` export needs none; missing values are 0). Blocks go through the stream
 * one by one, as a plugin's audio callback would send them. The output is the model's causal
 * output: a non-causal model's lookahead shows as a delay of its right context.
 */
#include "w2w.c"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s model.w2w [block] [cond values...] < in.f32 > out.f32\n", argv[0]);
    return 2;
  }
  char err[512];
  w2w_t *m = w2w_load(argv[1], err, sizeof err);
  if (!m) {
    fprintf(stderr, "w2w_cli: %s\n", err);
    return 1;
  }
  int block = argc > 2 ? atoi(argv[2]) : 64;
  if (block < 1 || block > 1 << 20) {
    fprintf(stderr, "w2w_cli: block size must be 1..2^20, got %s\n", argv[2]);
    w2w_free(m);
    return 2;
  }
  int D = w2w_cond_dim(m);
  float *c = calloc((size_t)(D ? D : 1), sizeof(float));
  for (int i = 0; i < D && 3 + i < argc; ++i) c[i] = strtof(argv[3 + i], NULL);
  w2w_set_conditioning(m, c, 0);
  w2w_reset(m);
  float *buf = malloc((size_t)block * sizeof(float));
  size_t n;
  int rc = 0;
  while ((n = fread(buf, sizeof(float), (size_t)block, stdin)) > 0) {
    if (w2w_process(m, buf, buf, (int)n) != 0 || fwrite(buf, sizeof(float), n, stdout) != n) {
      fprintf(stderr, "w2w_cli: %s\n", "processing or writing failed");
      rc = 1;
      break;
    }
  }
  free(buf);
  free(c);
  w2w_free(m);
  return rc;
}
