/* A minimal LV2 host for offline rendering, loaded from Python with ctypes.
 *
 * Why our own: Guitarix's amp (gx_amp) requires the URID map feature, the worker extension
 * and atom ports; the stock command-line hosts (lv2file, lv2proc) provide none of these.
 * This host provides urid:map/unmap, worker:schedule (work runs synchronously, responses are
 * delivered after run(), as jalv does without threads), options + buf-size (fixed block
 * length), and gives every atom input port an empty sequence each block.
 *
 * Mono: the first audio input and the first audio output port are used; any further audio
 * inputs are fed the same signal and further outputs are ignored.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

enum { K_AUDIO_IN = 0, K_AUDIO_OUT = 1, K_CONTROL_IN = 2, K_CONTROL_OUT = 3,
       K_ATOM_IN = 4, K_ATOM_OUT = 5, K_OTHER = 6 };

#define ATOM_BUF 8192
#define MAX_RESPONSES 64

typedef struct {
  char **uris;
  uint32_t n, cap;
} UridTable;

typedef struct {
  uint32_t size;
  void *data;
} Response;

typedef struct {
  LilvWorld *world;
  const LilvPlugin *plugin;
  LilvInstance *inst;
  UridTable urids;
  LV2_URID_Map map;
  LV2_URID_Unmap unmap;
  LV2_Worker_Schedule sched;
  const LV2_Worker_Interface *worker;
  LV2_Options_Option options[4];
  uint32_t block, min_block, seq_size;
  float sample_rate_f;
  double sample_rate;
  LV2_Feature f_map, f_unmap, f_sched, f_opts, f_bounded, f_fixed;
  const LV2_Feature *features[7];
  uint32_t n_ports;
  int *kind;
  float *controls, *cmin, *cmax, *cdef;
  char **symbols;
  void **atom_bufs;
  float *in_buf, *out_buf, *scratch;
  Response responses[MAX_RESPONSES];
  uint32_t n_responses;
  int active;
} Host;

static LV2_URID map_uri(LV2_URID_Map_Handle handle, const char *uri) {
  UridTable *t = (UridTable *)handle;
  for (uint32_t i = 0; i < t->n; ++i)
    if (!strcmp(t->uris[i], uri)) return i + 1;
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->uris = (char **)realloc(t->uris, t->cap * sizeof(char *));
  }
  t->uris[t->n] = strdup(uri);
  return ++t->n;
}

static const char *unmap_uri(LV2_URID_Unmap_Handle handle, LV2_URID urid) {
  UridTable *t = (UridTable *)handle;
  return (urid >= 1 && urid <= t->n) ? t->uris[urid - 1] : NULL;
}

static LV2_Worker_Status respond(LV2_Worker_Respond_Handle handle, uint32_t size, const void *data) {
  Host *h = (Host *)handle;
  if (h->n_responses >= MAX_RESPONSES) return LV2_WORKER_ERR_NO_SPACE;
  Response *r = &h->responses[h->n_responses++];
  r->size = size;
  r->data = malloc(size ? size : 1);
  memcpy(r->data, data, size);
  return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status schedule_work(LV2_Worker_Schedule_Handle handle, uint32_t size,
                                       const void *data) {
  Host *h = (Host *)handle;
  if (!h->worker || !h->worker->work) return LV2_WORKER_ERR_UNKNOWN;
  return h->worker->work(lilv_instance_get_handle(h->inst), respond, h, size, data);
}

static void deliver_responses(Host *h) {
  for (uint32_t i = 0; i < h->n_responses; ++i) {
    if (h->worker && h->worker->work_response)
      h->worker->work_response(lilv_instance_get_handle(h->inst), h->responses[i].size,
                               h->responses[i].data);
    free(h->responses[i].data);
  }
  h->n_responses = 0;
  if (h->worker && h->worker->end_run) h->worker->end_run(lilv_instance_get_handle(h->inst));
}

static void reset_atoms(Host *h) {
  LV2_URID seq = map_uri(&h->urids, LV2_ATOM__Sequence);
  LV2_URID chunk = map_uri(&h->urids, LV2_ATOM__Chunk);
  for (uint32_t p = 0; p < h->n_ports; ++p) {
    if (h->kind[p] == K_ATOM_IN) {
      LV2_Atom_Sequence *s = (LV2_Atom_Sequence *)h->atom_bufs[p];
      s->atom.type = seq;
      s->atom.size = sizeof(LV2_Atom_Sequence_Body);
      s->body.unit = 0;
      s->body.pad = 0;
    } else if (h->kind[p] == K_ATOM_OUT) {
      LV2_Atom *a = (LV2_Atom *)h->atom_bufs[p];
      a->type = chunk;
      a->size = ATOM_BUF - sizeof(LV2_Atom);
    }
  }
}

void ah_close(void *handle);

void *ah_open(const char *uri, double sample_rate, uint32_t block, char *err, int errlen) {
  Host *h = (Host *)calloc(1, sizeof(Host));
  h->world = lilv_world_new();
  lilv_world_load_all(h->world);
  LilvNode *uri_node = lilv_new_uri(h->world, uri);
  const LilvPlugins *plugins = lilv_world_get_all_plugins(h->world);
  h->plugin = lilv_plugins_get_by_uri(plugins, uri_node);
  lilv_node_free(uri_node);
  if (!h->plugin) {
    snprintf(err, errlen, "LV2 plugin <%s> is not installed (searched LV2_PATH)", uri);
    ah_close(h);
    return NULL;
  }
  h->block = block;
  h->min_block = 1;
  h->seq_size = ATOM_BUF;
  h->sample_rate_f = (float)sample_rate;
  h->sample_rate = sample_rate;
  h->map.handle = &h->urids;
  h->map.map = map_uri;
  h->unmap.handle = &h->urids;
  h->unmap.unmap = unmap_uri;
  h->sched.handle = h;
  h->sched.schedule_work = schedule_work;
  LV2_URID atom_int = map_uri(&h->urids, LV2_ATOM__Int);
  LV2_URID atom_float = map_uri(&h->urids, LV2_ATOM__Float);
  h->options[0] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0,
      map_uri(&h->urids, LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t), atom_int, &h->block};
  h->options[1] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0,
      map_uri(&h->urids, LV2_BUF_SIZE__minBlockLength), sizeof(int32_t), atom_int, &h->min_block};
  h->options[2] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0,
      map_uri(&h->urids, LV2_BUF_SIZE__sequenceSize), sizeof(int32_t), atom_int, &h->seq_size};
  h->options[3] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, NULL};
  (void)atom_float;
  h->f_map = (LV2_Feature){LV2_URID__map, &h->map};
  h->f_unmap = (LV2_Feature){LV2_URID__unmap, &h->unmap};
  h->f_sched = (LV2_Feature){LV2_WORKER__schedule, &h->sched};
  h->f_opts = (LV2_Feature){LV2_OPTIONS__options, h->options};
  h->f_bounded = (LV2_Feature){LV2_BUF_SIZE__boundedBlockLength, NULL};
  h->f_fixed = (LV2_Feature){LV2_BUF_SIZE__fixedBlockLength, NULL};
  const LV2_Feature *fs[7] = {&h->f_map, &h->f_unmap, &h->f_sched, &h->f_opts, &h->f_bounded,
                              &h->f_fixed, NULL};
  memcpy(h->features, fs, sizeof(fs));

  /* Refuse early, with a name, if the plugin requires a feature we do not provide. */
  LilvNodes *req = lilv_plugin_get_required_features(h->plugin);
  LILV_FOREACH(nodes, i, req) {
    const char *f = lilv_node_as_uri(lilv_nodes_get(req, i));
    int ok = 0;
    for (int k = 0; h->features[k]; ++k) ok |= !strcmp(f, h->features[k]->URI);
    ok |= !strcmp(f, LV2_CORE__isLive) || !strcmp(f, LV2_CORE__inPlaceBroken) ||
          !strcmp(f, LV2_CORE__hardRTCapable);
    if (!ok) {
      snprintf(err, errlen, "LV2 plugin <%s> requires feature <%s>, which this host lacks", uri, f);
      lilv_nodes_free(req);
      ah_close(h);
      return NULL;
    }
  }
  lilv_nodes_free(req);

  LilvNode *audio = lilv_new_uri(h->world, LV2_CORE__AudioPort);
  LilvNode *control = lilv_new_uri(h->world, LV2_CORE__ControlPort);
  LilvNode *input = lilv_new_uri(h->world, LV2_CORE__InputPort);
  LilvNode *atom = lilv_new_uri(h->world, LV2_ATOM__AtomPort);
  h->n_ports = lilv_plugin_get_num_ports(h->plugin);
  h->kind = (int *)calloc(h->n_ports, sizeof(int));
  h->controls = (float *)calloc(h->n_ports, sizeof(float));
  h->cmin = (float *)calloc(h->n_ports, sizeof(float));
  h->cmax = (float *)calloc(h->n_ports, sizeof(float));
  h->cdef = (float *)calloc(h->n_ports, sizeof(float));
  h->symbols = (char **)calloc(h->n_ports, sizeof(char *));
  h->atom_bufs = (void **)calloc(h->n_ports, sizeof(void *));
  h->in_buf = (float *)calloc(block, sizeof(float));
  h->out_buf = (float *)calloc(block, sizeof(float));
  h->scratch = (float *)calloc(block, sizeof(float));
  lilv_plugin_get_port_ranges_float(h->plugin, h->cmin, h->cmax, h->cdef);

  h->inst = lilv_plugin_instantiate(h->plugin, sample_rate, h->features);
  if (!h->inst) {
    snprintf(err, errlen, "LV2 plugin <%s> failed to instantiate", uri);
    lilv_node_free(audio); lilv_node_free(control); lilv_node_free(input); lilv_node_free(atom);
    ah_close(h);
    return NULL;
  }
  h->worker = (const LV2_Worker_Interface *)lilv_instance_get_extension_data(
      h->inst, LV2_WORKER__interface);

  int have_in = 0, have_out = 0;
  for (uint32_t p = 0; p < h->n_ports; ++p) {
    const LilvPort *port = lilv_plugin_get_port_by_index(h->plugin, p);
    h->symbols[p] = strdup(lilv_node_as_string(lilv_port_get_symbol(h->plugin, port)));
    int is_in = lilv_port_is_a(h->plugin, port, input);
    if (lilv_port_is_a(h->plugin, port, audio)) {
      h->kind[p] = is_in ? K_AUDIO_IN : K_AUDIO_OUT;
      if (is_in) {
        lilv_instance_connect_port(h->inst, p, h->in_buf);
        have_in = 1;
      } else {
        lilv_instance_connect_port(h->inst, p, have_out ? h->scratch : h->out_buf);
        have_out = 1;
      }
    } else if (lilv_port_is_a(h->plugin, port, control)) {
      h->kind[p] = is_in ? K_CONTROL_IN : K_CONTROL_OUT;
      h->controls[p] = (h->cdef[p] == h->cdef[p]) ? h->cdef[p] : 0.0f; /* NaN: no default */
      lilv_instance_connect_port(h->inst, p, &h->controls[p]);
    } else if (lilv_port_is_a(h->plugin, port, atom)) {
      h->kind[p] = is_in ? K_ATOM_IN : K_ATOM_OUT;
      h->atom_bufs[p] = calloc(1, ATOM_BUF);
      lilv_instance_connect_port(h->inst, p, h->atom_bufs[p]);
    } else {
      h->kind[p] = K_OTHER;
      lilv_instance_connect_port(h->inst, p, NULL);
    }
  }
  lilv_node_free(audio); lilv_node_free(control); lilv_node_free(input); lilv_node_free(atom);
  if (!have_in || !have_out) {
    snprintf(err, errlen, "LV2 plugin <%s> has no audio input or no audio output", uri);
    ah_close(h);
    return NULL;
  }
  reset_atoms(h);
  lilv_instance_activate(h->inst);
  h->active = 1;
  return h;
}

uint32_t ah_num_ports(void *handle) { return ((Host *)handle)->n_ports; }

/* The plugin's human-readable name (lv2 doap:name), e.g. "GxTubeScreamer". */
int ah_plugin_name(void *handle, char *buf, int len) {
  Host *h = (Host *)handle;
  LilvNode *name = lilv_plugin_get_name(h->plugin);
  snprintf(buf, len, "%s", name ? lilv_node_as_string(name) : "");
  lilv_node_free(name);
  return 0;
}

int ah_port_info(void *handle, uint32_t p, char *sym, int symlen, float *mn, float *mx, float *def) {
  Host *h = (Host *)handle;
  if (p >= h->n_ports) return -1;
  snprintf(sym, symlen, "%s", h->symbols[p]);
  *mn = h->cmin[p];
  *mx = h->cmax[p];
  *def = h->cdef[p];
  return h->kind[p];
}

void ah_set_control(void *handle, uint32_t p, float value) {
  Host *h = (Host *)handle;
  if (p < h->n_ports && h->kind[p] == K_CONTROL_IN) h->controls[p] = value;
}

float ah_get_control(void *handle, uint32_t p) {
  Host *h = (Host *)handle;
  return p < h->n_ports ? h->controls[p] : 0.0f;
}

/* A fresh instance with the current control values: deactivate/activate alone leaves some
 * plugins' parameter smoothers where the previous render left them, so a render would depend
 * on the one before it. Re-instantiating makes every render a function of (settings, input). */
int ah_reset(void *handle) {
  Host *h = (Host *)handle;
  if (h->active) lilv_instance_deactivate(h->inst);
  lilv_instance_free(h->inst);
  h->active = 0;
  h->inst = lilv_plugin_instantiate(h->plugin, h->sample_rate, h->features);
  if (!h->inst) return -1;
  h->worker = (const LV2_Worker_Interface *)lilv_instance_get_extension_data(
      h->inst, LV2_WORKER__interface);
  int have_out = 0;
  for (uint32_t p = 0; p < h->n_ports; ++p) {
    switch (h->kind[p]) {
      case K_AUDIO_IN: lilv_instance_connect_port(h->inst, p, h->in_buf); break;
      case K_AUDIO_OUT:
        lilv_instance_connect_port(h->inst, p, have_out ? h->scratch : h->out_buf);
        have_out = 1;
        break;
      case K_CONTROL_IN: case K_CONTROL_OUT:
        lilv_instance_connect_port(h->inst, p, &h->controls[p]);
        break;
      case K_ATOM_IN: case K_ATOM_OUT: lilv_instance_connect_port(h->inst, p, h->atom_bufs[p]); break;
      default: lilv_instance_connect_port(h->inst, p, NULL);
    }
  }
  reset_atoms(h);
  lilv_instance_activate(h->inst);
  h->active = 1;
  return 0;
}

/* Processes n samples in blocks of at most `block`; output written to out. */
void ah_process(void *handle, const float *in, float *out, uint64_t n) {
  Host *h = (Host *)handle;
  for (uint64_t done = 0; done < n;) {
    uint32_t len = (uint32_t)((n - done) < h->block ? (n - done) : h->block);
    memcpy(h->in_buf, in + done, len * sizeof(float));
    reset_atoms(h);
    lilv_instance_run(h->inst, len);
    deliver_responses(h);
    memcpy(out + done, h->out_buf, len * sizeof(float));
    done += len;
  }
}

void ah_close(void *handle) {
  Host *h = (Host *)handle;
  if (!h) return;
  if (h->inst) {
    if (h->active) lilv_instance_deactivate(h->inst);
    h->active = 0;
    lilv_instance_free(h->inst);
  }
  for (uint32_t p = 0; p < h->n_ports; ++p) {
    free(h->symbols ? h->symbols[p] : NULL);
    free(h->atom_bufs ? h->atom_bufs[p] : NULL);
  }
  free(h->kind); free(h->controls); free(h->cmin); free(h->cmax); free(h->cdef);
  free(h->symbols); free(h->atom_bufs); free(h->in_buf); free(h->out_buf); free(h->scratch);
  for (uint32_t i = 0; i < h->urids.n; ++i) free(h->urids.uris[i]);
  free(h->urids.uris);
  if (h->world) lilv_world_free(h->world);
  free(h);
}
