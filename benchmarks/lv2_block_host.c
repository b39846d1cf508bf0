/* A minimal LV2 host in C for timing a plugin the way a DAW's audio thread runs it: one
 * run() per block of B samples, no scripting language between blocks.
 *
 *   cc -O2 lv2_block_host.c $(pkg-config --cflags --libs lilv-0) -lm -o lv2_block_host
 *   LV2_PATH=BUNDLE_PARENT ./lv2_block_host PLUGIN_URI BLOCK SECONDS REPEATS
 *
 * The input is the streaming benchmark's signal (a decaying 110 Hz tone plus a little noise);
 * control inputs sit at their defaults. Prints "rtf <best audio s / wall s> cpu_rtf <...>"
 * (benchmarks/bench_streaming.py reads it). */
#include <lilv/lilv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double wall(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s PLUGIN_URI BLOCK SECONDS REPEATS\n", argv[0]);
    return 2;
  }
  const int block = atoi(argv[2]), repeats = atoi(argv[4]);
  const double sr = 44100.0;
  const long n = (long)(atof(argv[3]) * sr) / block * block;
  if (block < 1 || n < block || repeats < 1) {
    fprintf(stderr, "lv2_block_host: bad block, seconds or repeats\n");
    return 2;
  }
  LilvWorld *world = lilv_world_new();
  lilv_world_load_all(world);
  LilvNode *uri = lilv_new_uri(world, argv[1]);
  const LilvPlugin *plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
  if (!plugin) {
    fprintf(stderr, "lv2_block_host: %s: no such plugin on LV2_PATH\n", argv[1]);
    return 1;
  }
  LilvInstance *inst = lilv_plugin_instantiate(plugin, sr, NULL);
  if (!inst) {
    fprintf(stderr, "lv2_block_host: %s: instantiation failed\n", argv[1]);
    return 1;
  }
  LilvNode *audio = lilv_new_uri(world, LV2_CORE__AudioPort);
  LilvNode *control = lilv_new_uri(world, LV2_CORE__ControlPort);
  LilvNode *input = lilv_new_uri(world, LV2_CORE__InputPort);
  const uint32_t ports = lilv_plugin_get_num_ports(plugin);
  float *values = calloc(ports, sizeof(float)), *mins = calloc(ports, sizeof(float));
  float *maxs = calloc(ports, sizeof(float));
  lilv_plugin_get_port_ranges_float(plugin, mins, maxs, values);
  float *in = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * n);
  unsigned seed = 1;
  for (long i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    double t = i / sr;
    in[i] = (float)(0.4 * sin(2 * M_PI * 110 * t) * exp(-fmod(t, 1.0) * 3) +
                    0.01 * ((seed >> 8) / 16777216.0 - 0.5));
  }
  int audio_in = -1, audio_out = -1;
  for (uint32_t p = 0; p < ports; ++p) {
    const LilvPort *port = lilv_plugin_get_port_by_index(plugin, p);
    if (lilv_port_is_a(plugin, port, audio)) {
      if (lilv_port_is_a(plugin, port, input)) audio_in = (int)p;
      else audio_out = (int)p;
    } else if (lilv_port_is_a(plugin, port, control)) {
      if (isnan(values[p])) values[p] = 0.0f;
      lilv_instance_connect_port(inst, p, &values[p]);
    } else {
      lilv_instance_connect_port(inst, p, NULL);
    }
  }
  if (audio_in < 0 || audio_out < 0) {
    fprintf(stderr, "lv2_block_host: %s: needs one audio input and one audio output\n", argv[1]);
    return 1;
  }
  lilv_instance_activate(inst);
  double best = 1e30, best_cpu = 1e30;
  for (int r = 0; r < repeats; ++r) {
    double w0 = wall(), c0 = cpu();
    for (long i = 0; i < n; i += block) {
      lilv_instance_connect_port(inst, (uint32_t)audio_in, in + i);
      lilv_instance_connect_port(inst, (uint32_t)audio_out, out + i);
      lilv_instance_run(inst, (uint32_t)block);
    }
    double w = wall() - w0, c = cpu() - c0;
    if (w < best) best = w, best_cpu = c;
  }
  double sum = 0;
  for (long i = 0; i < n; ++i) sum += fabs(out[i]);
  printf("rtf %.4f cpu_rtf %.4f mean_abs_out %.6g\n", n / sr / best, n / sr / best_cpu, sum / n);
  lilv_instance_deactivate(inst);
  lilv_instance_free(inst);
  lilv_node_free(uri);
  lilv_node_free(audio);
  lilv_node_free(control);
  lilv_node_free(input);
  lilv_world_free(world);
  free(values), free(mins), free(maxs), free(in), free(out);
  return 0;
}
