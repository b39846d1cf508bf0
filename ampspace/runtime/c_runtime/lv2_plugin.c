/* An exported Wave2WaveNet as a mono LV2 effect plugin.
 *
 * `python -m ampspace.runtime.export --workdir=RUN --lv2=OUT_DIR` compiles this file (with w2w.c
 * included, and the plugin's URI as -DAMPSPACE_LV2_URI="...") into the bundle beside:
 *   model.w2w         the weights (format at the top of w2w.c);
 *   conditioning.bin  how the knob ports become the conditioning vector, written from the
 *                     export's model.json (the .w2w file has no knob names):
 *                       8 bytes  magic "AMPLV2C1"
 *                       4 int32  D (conditioning values), n (knob ports), latency (samples of
 *                                lookahead), sample rate the model was trained at
 *                       float32  the conditioning vector at the export's default settings [D]
 *                       n times  float64 minimum, float64 maximum, int32 count, int32 indices
 *                                into the vector [count]
 *                     (little endian). A knob port's dial value v sets the entries `indices` to
 *                     clip((v - minimum) / (maximum - minimum), 0, 1), as the training code does
 *                     (a knob can fill more than one slot; the export checks the map against
 *                     the Python runtime's conditioning before writing it).
 *
 * Ports: 0 audio in, 1 audio out, 2 .. n+1 the knobs, and n+2 an lv2:latency control output
 * when the model looks ahead (its output is then late by that many samples).
 *
 * Real time: instantiate() reads both files and sizes every buffer for the host's largest block
 * (bufsz:maxBlockLength when the host gives it, else CHUNK); run() never allocates, cutting
 * longer blocks into chunks. A knob change is reached by the C runtime's linear ramp of
 * SMOOTHING samples, so it makes no click. The first run() after activate() starts from the
 * state after silence at the knobs' values, with no ramp, as a fresh stream of the C runtime
 * at those settings does.
 */
#define W2W_API static __attribute__((unused))
#include "w2w.c"

#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/urid/urid.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#ifndef AMPSPACE_LV2_URI
#error "build with -DAMPSPACE_LV2_URI='\"<plugin uri>\"', as python -m ampspace.runtime.export --lv2 does"
#endif

#define MODEL_FILE "model.w2w"
#define CONDITIONING_FILE "conditioning.bin"
#define CONDITIONING_MAGIC "AMPLV2C1"
#define CHUNK 4096      /* samples per w2w_process call: longer host blocks are cut up */
#define SMOOTHING 1024  /* knob ramp in samples: ampspace.runtime.export_format.DEFAULT_SMOOTHING */
#define MAX_KNOBS 4096

enum { PORT_IN = 0, PORT_OUT = 1, PORT_KNOBS = 2 };

typedef struct {
  double minimum, maximum;
  int first, count; /* its entries of Plugin.indices */
} KnobMap;

typedef struct {
  w2w_t *model;
  int dim, n_knobs, latency, chunk;
  float *c;          /* [dim] the conditioning vector the knobs now ask for */
  KnobMap *knobs;    /* [n_knobs] */
  int32_t *indices;  /* every knob's conditioning indices, one after the other */
  float *applied;    /* [n_knobs] the port values c reflects */
  const float **knob_ports;
  const float *in;
  float *out, *latency_port;
  int fresh;         /* no run() since activate() */
} Plugin;

static void free_plugin(Plugin *p) {
  if (!p) return;
  w2w_free(p->model);
  free(p->c);
  free(p->knobs);
  free(p->indices);
  free(p->applied);
  free(p->knob_ports);
  free(p);
}

static int read_i32(FILE *f, int32_t *v) { return fread(v, sizeof *v, 1, f) == 1; }

/* Reads conditioning.bin into p (dim, n_knobs, latency, c, knobs); 0, or -1 with err set. */
static int read_conditioning(Plugin *p, const char *path, int32_t *sample_rate, char *err,
                             size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open", path);
    return -1;
  }
  char magic[8];
  int32_t dim, n, latency;
  int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, CONDITIONING_MAGIC, 8) == 0;
  ok = ok && read_i32(f, &dim) && read_i32(f, &n) && read_i32(f, &latency) &&
       read_i32(f, sample_rate) && dim >= 0 && dim <= 1 << 20 && n >= 0 && n <= MAX_KNOBS &&
       latency >= 0;
  if (ok) {
    p->dim = dim, p->n_knobs = n, p->latency = latency;
    p->c = calloc((size_t)(dim ? dim : 1), sizeof(float));
    p->knobs = calloc((size_t)(n ? n : 1), sizeof(KnobMap));
    p->applied = calloc((size_t)(n ? n : 1), sizeof(float));
    p->knob_ports = calloc((size_t)(n ? n : 1), sizeof(float *));
    ok = p->c && p->knobs && p->applied && p->knob_ports &&
         fread(p->c, sizeof(float), (size_t)dim, f) == (size_t)dim;
  }
  int total = 0;
  for (int i = 0; ok && i < n; ++i) {
    KnobMap *k = &p->knobs[i];
    int32_t count;
    ok = fread(&k->minimum, sizeof(double), 1, f) == 1 &&
         fread(&k->maximum, sizeof(double), 1, f) == 1 && read_i32(f, &count) && count >= 0 &&
         count <= dim;
    int32_t *grown = ok ? realloc(p->indices, (size_t)(total + count + 1) * sizeof(int32_t)) : NULL;
    ok = grown != NULL;
    if (ok) p->indices = grown;
    ok = ok && fread(p->indices + total, sizeof(int32_t), (size_t)count, f) == (size_t)count;
    for (int j = 0; ok && j < count; ++j)
      ok = p->indices[total + j] >= 0 && p->indices[total + j] < dim;
    k->first = total, k->count = count;
    total += ok ? count : 0;
  }
  ok = ok && fgetc(f) == EOF;
  fclose(f);
  if (!ok) snprintf(err, errlen, "%s: truncated or corrupt (not written by this version?)", path);
  return ok ? 0 : -1;
}

/* The host's largest block (bufsz:maxBlockLength), or 0 when it does not say. */
static int host_max_block(const LV2_Feature *const *features) {
  const LV2_URID_Map *map = NULL;
  const LV2_Options_Option *options = NULL;
  for (int i = 0; features && features[i]; ++i) {
    if (!strcmp(features[i]->URI, LV2_URID__map)) map = features[i]->data;
    if (!strcmp(features[i]->URI, LV2_OPTIONS__options)) options = features[i]->data;
  }
  if (!map || !options) return 0;
  LV2_URID max_len = map->map(map->handle, LV2_BUF_SIZE__maxBlockLength);
  LV2_URID atom_int = map->map(map->handle, LV2_ATOM__Int);
  for (const LV2_Options_Option *o = options; o->key || o->value; ++o)
    if (o->key == max_len && o->type == atom_int && o->size == sizeof(int32_t))
      return *(const int32_t *)o->value;
  return 0;
}

/* bundle_path/name, on the heap (NULL when out of memory). */
static char *bundle_file(const char *bundle_path, const char *name) {
  size_t n = strlen(bundle_path);
  char *path = malloc(n + strlen(name) + 2);
  if (path) sprintf(path, "%s%s%s", bundle_path, n && bundle_path[n - 1] == '/' ? "" : "/", name);
  return path;
}

static LV2_Handle instantiate(const LV2_Descriptor *descriptor, double rate,
                              const char *bundle_path, const LV2_Feature *const *features) {
  (void)descriptor;
  char err[1024] = "out of memory";
  Plugin *p = calloc(1, sizeof(Plugin));
  char *cond_path = bundle_file(bundle_path, CONDITIONING_FILE);
  char *model_path = bundle_file(bundle_path, MODEL_FILE);
  int32_t sample_rate = 0;
  if (!p || !cond_path || !model_path) goto fail;
  if (read_conditioning(p, cond_path, &sample_rate, err, sizeof err) != 0) goto fail;
  if (!(p->model = w2w_load(model_path, err, sizeof err))) goto fail;
  if (w2w_cond_dim(p->model) != p->dim) {
    snprintf(err, sizeof err, "%s takes %d conditioning values, %s gives %d", MODEL_FILE,
             w2w_cond_dim(p->model), CONDITIONING_FILE, p->dim);
    goto fail;
  }
  int max_block = host_max_block(features);
  p->chunk = max_block > 0 && max_block < CHUNK ? max_block : CHUNK;
  if (w2w_reserve(p->model, p->chunk) != 0) {
    snprintf(err, sizeof err, "out of memory for %d-sample blocks", p->chunk);
    goto fail;
  }
  if (sample_rate > 0 && (int)rate != sample_rate)
    fprintf(stderr, "%s: the model learned its device at %d Hz; at %.0f Hz it sounds different\n",
            AMPSPACE_LV2_URI, sample_rate, rate);
  w2w_set_smoothing(p->model, SMOOTHING);
  w2w_set_conditioning(p->model, p->c, 0);
  w2w_reset(p->model);
  p->fresh = 1;
  free(cond_path);
  free(model_path);
  return p;
fail:
  fprintf(stderr, "%s: %s\n", AMPSPACE_LV2_URI, err);
  free_plugin(p);
  free(cond_path);
  free(model_path);
  return NULL;
}

static void connect_port(LV2_Handle handle, uint32_t port, void *data) {
  Plugin *p = handle;
  if (port == PORT_IN)
    p->in = data;
  else if (port == PORT_OUT)
    p->out = data;
  else if (port < PORT_KNOBS + (uint32_t)p->n_knobs)
    p->knob_ports[port - PORT_KNOBS] = data;
  else if (port == PORT_KNOBS + (uint32_t)p->n_knobs && p->latency > 0)
    p->latency_port = data;
}

static void activate(LV2_Handle handle) { ((Plugin *)handle)->fresh = 1; }

/* Copies the knob ports into the conditioning vector; 1 when any value changed. */
static int read_knobs(Plugin *p) {
  int changed = 0;
  for (int i = 0; i < p->n_knobs; ++i) {
    const float *port = p->knob_ports[i];
    if (!port || isnan(*port) || (!p->fresh && *port == p->applied[i])) continue;
    const KnobMap *k = &p->knobs[i];
    double a = k->maximum == k->minimum ? 0.0 : ((double)*port - k->minimum) /
                                                 (k->maximum - k->minimum);
    const float value = (float)(a < 0.0 ? 0.0 : a > 1.0 ? 1.0 : a);
    for (int j = 0; j < k->count; ++j) p->c[p->indices[k->first + j]] = value;
    p->applied[i] = *port;
    changed = 1;
  }
  return changed;
}

static void run(LV2_Handle handle, uint32_t n) {
  Plugin *p = handle;
  if (p->latency_port) *p->latency_port = (float)p->latency;
  int changed = read_knobs(p);
  if (p->fresh) { /* a new stream: the settled state at these settings, no ramp */
    w2w_set_conditioning(p->model, p->c, 0);
    w2w_reset(p->model);
    p->fresh = 0;
  } else if (changed) {
    w2w_set_conditioning(p->model, p->c, 1);
  }
  if (!p->in || !p->out) return;
#if defined(__SSE__)
  /* denormals cost hundreds of cycles each; flush them, as audio hosts expect of a plugin */
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040); /* FTZ and DAZ */
#endif
  for (uint32_t done = 0; done < n;) {
    int len = n - done < (uint32_t)p->chunk ? (int)(n - done) : p->chunk;
    w2w_process(p->model, p->in + done, p->out + done, len); /* cannot fail: len <= reserved */
    done += (uint32_t)len;
  }
#if defined(__SSE__)
  _mm_setcsr(csr);
#endif
}

static void cleanup(LV2_Handle handle) { free_plugin(handle); }

static const void *extension_data(const char *uri) {
  (void)uri;
  return NULL;
}

static const LV2_Descriptor descriptor = {AMPSPACE_LV2_URI, instantiate, connect_port, activate,
                                          run, NULL, cleanup, extension_data};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index) {
  return index == 0 ? &descriptor : NULL;
}
