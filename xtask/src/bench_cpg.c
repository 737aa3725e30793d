/* ccpgbench: the C twin of totem's cpgbench (client/src/bin/cpgbench), for corosync's
 * libcpg. Generated and compiled by `cargo xtask bench cpg --compare-corosync`
 * (xtask/src/bench_cpg.rs); same protocol, same checks, same output line:
 *   cpg size=<B> msgs_s=<n> MB_s=<x> p50_us=<a> p99_us=<b> order=ok|FAILED
 * Messages: 40-byte big-endian header (magic "CPGB", kind, run, size, seq, a, b), then
 * the body. On CS_ERR_TRY_AGAIN: dispatch, poll the fd for <= 1 ms, retry. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifndef TOTEM_NO_CPG_H
#include <corosync/cpg.h>
#else
/* corosync 3 cpg.h / corotypes.h, the part used here (libcpg-dev not installed). */
typedef uint64_t cpg_handle_t;
typedef int cs_error_t;
#define CS_OK 1
#define CS_ERR_TRY_AGAIN 6
typedef enum { CS_DISPATCH_ONE = 1, CS_DISPATCH_ALL = 2, CS_DISPATCH_BLOCKING = 3,
               CS_DISPATCH_ONE_NONBLOCKING = 4 } cs_dispatch_flags_t;
typedef enum { CPG_TYPE_UNORDERED, CPG_TYPE_FIFO, CPG_TYPE_AGREED, CPG_TYPE_SAFE } cpg_guarantee_t;
typedef enum { CPG_MODEL_V1 = 1 } cpg_model_t;
struct cpg_address { uint32_t nodeid; uint32_t pid; uint32_t reason; };
struct cpg_name { uint32_t length; char value[128]; };
struct cpg_ring_id { uint32_t nodeid; uint64_t seq; };
typedef void (*cpg_deliver_fn_t)(cpg_handle_t, const struct cpg_name *, uint32_t, uint32_t,
                                 void *, size_t);
typedef void (*cpg_confchg_fn_t)(cpg_handle_t, const struct cpg_name *,
                                 const struct cpg_address *, size_t,
                                 const struct cpg_address *, size_t,
                                 const struct cpg_address *, size_t);
typedef void (*cpg_totem_confchg_fn_t)(cpg_handle_t, struct cpg_ring_id, uint32_t,
                                       const uint32_t *);
typedef struct { cpg_model_t model; } cpg_model_data_t;
typedef struct { cpg_model_t model; cpg_deliver_fn_t cpg_deliver_fn;
                 cpg_confchg_fn_t cpg_confchg_fn; cpg_totem_confchg_fn_t cpg_totem_confchg_fn;
                 unsigned int flags; } cpg_model_v1_data_t;
cs_error_t cpg_model_initialize(cpg_handle_t *, cpg_model_t, cpg_model_data_t *, void *);
cs_error_t cpg_finalize(cpg_handle_t);
cs_error_t cpg_fd_get(cpg_handle_t, int *);
cs_error_t cpg_dispatch(cpg_handle_t, cs_dispatch_flags_t);
cs_error_t cpg_join(cpg_handle_t, const struct cpg_name *);
cs_error_t cpg_mcast_joined(cpg_handle_t, cpg_guarantee_t, const struct iovec *, unsigned int);
cs_error_t cpg_local_get(cpg_handle_t, unsigned int *);
#endif

#define MAGIC 0x43504742u
#define HEADER_LEN 40
#define MAX_RUNS 64
#define MAX_PEERS 64
enum { K_START = 1, K_DATA = 2, K_END = 3, K_REPORT = 4 };

typedef struct { uint32_t kind, run, size; uint64_t seq, a, b; } header_t;
typedef struct { uint32_t node, pid; } peer_t;
typedef struct {
    peer_t started[MAX_PEERS]; int nstarted; double t_start; int has_start;
    peer_t ended[MAX_PEERS]; int nended; double t_end; int has_end;
    uint64_t delivered, own_delivered, hash_at_end, delivered_at_end;
    uint64_t *lat; size_t nlat, caplat;
    peer_t reporters[MAX_PEERS]; uint64_t rep_hash[MAX_PEERS], rep_n[MAX_PEERS]; int nreports;
} run_t;

static cpg_handle_t handle;
static int fd;
static struct cpg_name group;
static peer_t me;
static int senders = 1, members_wanted = 1, receive_only = 0, verify = 0;
static double seconds = 5.0, rate = 0.0, timeout_s = 60.0;
static cpg_guarantee_t guarantee = CPG_TYPE_AGREED;
static const char *hash_file = NULL;
static run_t runs[MAX_RUNS + 1];
static peer_t members[MAX_PEERS]; static int nmembers;
static peer_t seq_peer[MAX_PEERS]; static uint64_t seq_next[MAX_PEERS]; static int nseq;
static uint64_t hash = 0xcbf29ce484222325ull, errors = 0, my_seq = 0;
static double epoch;

static double now_s(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 0x00000100000001b3ull; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static void encode(uint8_t *o, const header_t *h) {
    memset(o, 0, HEADER_LEN); put32(o, MAGIC); o[4] = (uint8_t)h->kind; put32(o + 8, h->run);
    put32(o + 12, h->size); put64(o + 16, h->seq); put64(o + 24, h->a); put64(o + 32, h->b);
}
static int decode(const uint8_t *m, size_t len, header_t *h) {
    if (len < HEADER_LEN || get32(m) != MAGIC || m[4] < 1 || m[4] > 4) return 0;
    h->kind = m[4]; h->run = get32(m + 8); h->size = get32(m + 12); h->seq = get64(m + 16);
    h->a = get64(m + 24); h->b = get64(m + 32); return 1;
}
static uint64_t body_hash(const uint8_t *b, size_t n) {
    uint64_t h = mix(0xcbf29ce484222325ull, n); size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t w; memcpy(&w, b + i, 8); h = mix(h, w); }
    for (; i < n; i++) h = mix(h, b[i]);
    return h;
}
static int peer_eq(peer_t a, peer_t b) { return a.node == b.node && a.pid == b.pid; }
static int peer_in(const peer_t *l, int n, peer_t p) { for (int i = 0; i < n; i++) if (peer_eq(l[i], p)) return 1; return 0; }
static void fail(const char *what, peer_t p, uint64_t x, uint64_t y) {
    errors++;
    if (errors <= 10) fprintf(stderr, "ccpgbench: ORDER: sender %u/%u: %s (%llu, %llu)\n", p.node, p.pid, what,
                              (unsigned long long)x, (unsigned long long)y);
}

static void deliver_fn(cpg_handle_t h_, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len) {
    (void)h_;
    if (g->length != group.length || memcmp(g->value, group.value, group.length) != 0) return;
    peer_t s = { nodeid, pid }; header_t h;
    if (!decode(msg, len, &h)) { fail("a message that is not cpgbench's", s, len, 0); return; }
    hash = mix(hash, (uint64_t)nodeid << 32 | pid); hash = mix(hash, h.seq);
    hash = mix(hash, (uint64_t)h.run << 8 | h.kind);
    int i; for (i = 0; i < nseq && !peer_eq(seq_peer[i], s); i++) {}
    if (i == nseq && nseq < MAX_PEERS) { seq_peer[nseq] = s; seq_next[nseq] = 0; nseq++; }
    if (i < MAX_PEERS) { if (h.seq != seq_next[i]) fail("message out of sequence", s, h.seq, seq_next[i]); seq_next[i] = h.seq + 1; }
    if (h.kind == K_DATA) {
        if (len != h.size) fail("wrong size", s, len, h.size);
        else if (verify && body_hash((const uint8_t *)msg + HEADER_LEN, len - HEADER_LEN) != h.b) fail("body does not match", s, h.seq, 0);
    }
    if (h.run < 1 || h.run > MAX_RUNS) return;
    run_t *r = &runs[h.run]; double t = now_s();
    switch (h.kind) {
    case K_START:
        if (!peer_in(r->started, r->nstarted, s) && r->nstarted < MAX_PEERS) r->started[r->nstarted++] = s;
        if (r->nstarted == senders && !r->has_start) { r->has_start = 1; r->t_start = t; }
        break;
    case K_DATA:
        r->delivered++;
        if (peer_eq(s, me)) {
            r->own_delivered++;
            if (r->nlat == r->caplat) { r->caplat = r->caplat ? 2 * r->caplat : 4096; r->lat = realloc(r->lat, r->caplat * 8); }
            r->lat[r->nlat++] = ((uint64_t)((t - epoch) * 1e9) - h.a) / 1000; /* the one clock read, t */
        }
        break;
    case K_END:
        if (!peer_in(r->ended, r->nended, s) && r->nended < MAX_PEERS) r->ended[r->nended++] = s;
        if (r->nended == senders && !r->has_end) { r->has_end = 1; r->t_end = t; r->hash_at_end = hash; r->delivered_at_end = r->delivered; }
        break;
    case K_REPORT:
        if (!peer_in(r->reporters, r->nreports, s) && r->nreports < MAX_PEERS) {
            r->reporters[r->nreports] = s; r->rep_hash[r->nreports] = h.a; r->rep_n[r->nreports] = h.b; r->nreports++;
        }
        break;
    }
}

static void confchg_fn(cpg_handle_t h_, const struct cpg_name *g, const struct cpg_address *m, size_t n,
                       const struct cpg_address *l, size_t nl, const struct cpg_address *j, size_t nj) {
    (void)h_; (void)l; (void)nl; (void)j; (void)nj;
    if (g->length != group.length || memcmp(g->value, group.value, group.length) != 0) return;
    nmembers = 0;
    for (size_t i = 0; i < n && i < MAX_PEERS; i++) { members[nmembers].node = m[i].nodeid; members[nmembers].pid = m[i].pid; nmembers++; }
}

static void die(const char *what, int err) { fprintf(stderr, "ccpgbench: %s: error %d\n", what, err); exit(1); }

static void pump(int wait_ms) {
    if (wait_ms > 0) { struct pollfd p = { fd, POLLIN, 0 }; poll(&p, 1, wait_ms); }
    cs_error_t e = cpg_dispatch(handle, CS_DISPATCH_ALL);
    if (e != CS_OK && e != CS_ERR_TRY_AGAIN) die("cpg_dispatch", e);
}

static void send_iov(struct iovec *iov, unsigned n) {
    for (;;) {
        cs_error_t e = cpg_mcast_joined(handle, guarantee, iov, n);
        if (e == CS_OK) { my_seq++; return; }
        if (e != CS_ERR_TRY_AGAIN) die("cpg_mcast_joined", e);
        pump(1);
    }
}

static void send_control(int kind, uint32_t run, uint32_t size, uint64_t a, uint64_t b) {
    uint8_t hdr[HEADER_LEN]; header_t h = { (uint32_t)kind, run, size, my_seq, a, b }; encode(hdr, &h);
    struct iovec iov = { hdr, HEADER_LEN }; send_iov(&iov, 1);
}

static void wait_until(int (*done)(uint32_t), uint32_t run, double deadline, const char *what) {
    while (!done(run)) {
        double left = deadline - now_s();
        if (left <= 0) { fprintf(stderr, "ccpgbench: gave up waiting for %s\n", what); exit(1); }
        pump(left > 0.1 ? 100 : (int)(left * 1000) + 1);
    }
}
static int enough_members(uint32_t r) { (void)r; return nmembers >= members_wanted; }
static int started(uint32_t r) { return runs[r].has_start; }
static int ended(uint32_t r) { return runs[r].has_end; }
static peer_t at_start[MAX_PEERS]; static int nat_start;
static int reported(uint32_t r) {
    for (int i = 0; i < nat_start; i++)
        if (!peer_in(runs[r].reporters, runs[r].nreports, at_start[i]) && peer_in(members, nmembers, at_start[i])) return 0;
    return 1;
}
static int cmp_u64(const void *a, const void *b) { uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    unsigned sizes[MAX_RUNS]; int nsizes = 0; const char *gname = "cpgbench";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i]; const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sizes") && v) { char *s = strdup(v), *t = strtok(s, ","); while (t && nsizes < MAX_RUNS) { sizes[nsizes++] = (unsigned)atoi(t); t = strtok(NULL, ","); } i++; }
        else if (!strcmp(a, "--seconds") && v) { seconds = atof(v); i++; }
        else if (!strcmp(a, "--rate") && v) { rate = atof(v); i++; }
        else if (!strcmp(a, "--members") && v) { members_wanted = atoi(v); i++; }
        else if (!strcmp(a, "--senders") && v) { senders = atoi(v); i++; }
        else if (!strcmp(a, "--group") && v) { gname = v; i++; }
        else if (!strcmp(a, "--hash-file") && v) { hash_file = v; i++; }
        else if (!strcmp(a, "--timeout") && v) { timeout_s = atof(v); i++; }
        else if (!strcmp(a, "--receive-only")) receive_only = 1;
        else if (!strcmp(a, "--verify")) verify = 1;
        else if (!strcmp(a, "--safe")) guarantee = CPG_TYPE_SAFE;
        else { fprintf(stderr, "ccpgbench: unknown argument %s\n", a); return 2; }
    }
    if (nsizes == 0) { sizes[0] = 64; sizes[1] = 1024; sizes[2] = 16384; sizes[3] = 65536; nsizes = 4; }
    for (int i = 0; i < nsizes; i++) if (sizes[i] < HEADER_LEN) { fprintf(stderr, "ccpgbench: size %u < %d\n", sizes[i], HEADER_LEN); return 2; }
    if (members_wanted < senders) members_wanted = senders;
    epoch = now_s();
    group.length = (uint32_t)strlen(gname); memcpy(group.value, gname, group.length);
    cpg_model_v1_data_t model; memset(&model, 0, sizeof model);
    model.model = CPG_MODEL_V1; model.cpg_deliver_fn = deliver_fn; model.cpg_confchg_fn = confchg_fn;
    cs_error_t e = cpg_model_initialize(&handle, CPG_MODEL_V1, (cpg_model_data_t *)&model, NULL);
    if (e != CS_OK) die("cpg_model_initialize", e);
    unsigned int nodeid; if ((e = cpg_local_get(handle, &nodeid)) != CS_OK) die("cpg_local_get", e);
    me.node = nodeid; me.pid = (uint32_t)getpid();
    if ((e = cpg_fd_get(handle, &fd)) != CS_OK) die("cpg_fd_get", e);
    for (;;) { e = cpg_join(handle, &group); if (e == CS_OK) break; if (e != CS_ERR_TRY_AGAIN) die("cpg_join", e); usleep(1000); }
    wait_until(enough_members, 0, now_s() + timeout_s, "the group to have --members members");
    memcpy(at_start, members, sizeof members); nat_start = nmembers;
    fprintf(stderr, "ccpgbench: node %u pid %u: %d members, %d sender(s)%s\n", me.node, me.pid, nmembers, senders,
            receive_only ? ", receiving only" : "");
    int all_ok = 1;
    for (int ri = 0; ri < nsizes; ri++) {
        uint32_t run = (uint32_t)ri + 1, size = sizes[ri]; run_t *r = &runs[run];
        uint64_t errors_before = errors, sent = 0;
        if (!receive_only) send_control(K_START, run, size, 0, 0);
        wait_until(started, run, now_s() + timeout_s, "every sender's START");
        if (!receive_only) {
            size_t blen = size - HEADER_LEN; uint8_t *body = malloc(blen + 1);
            for (size_t i = 0; i < blen; i++) body[i] = (uint8_t)((uint32_t)i * 31u + run * 7u);
            uint64_t bh = body_hash(body, blen);
            double end = r->t_start + seconds, next_at = now_s(), last_drain = now_s(); int since = 0;
            for (;;) {
                double t = now_s(); if (t >= end) break;
                if (rate > 0) {
                    if (t < next_at) { double w = (next_at < end ? next_at : end) - t; pump((int)(w * 1000) + (w > 0 ? 1 : 0)); continue; }
                    next_at += 1.0 / rate; if (t > next_at + 1.0) next_at = t + 1.0 / rate;
                }
                /* One clock read per message (t), as the Rust cpgbench. */
                uint8_t hdr[HEADER_LEN]; header_t h = { K_DATA, run, size, my_seq, (uint64_t)((t - epoch) * 1e9), bh }; encode(hdr, &h);
                struct iovec iov[2] = { { hdr, HEADER_LEN }, { body, blen } };
                send_iov(iov, blen ? 2 : 1); sent++; since++;
                if (rate <= 0 && (since >= 16 || t - last_drain >= 0.001)) { pump(0); since = 0; last_drain = t; }
            }
            free(body);
            send_control(K_END, run, size, sent, 0);
        }
        wait_until(ended, run, now_s() + seconds + timeout_s, "every sender's END");
        int same = 1;
        if (verify) {
            send_control(K_REPORT, run, size, r->hash_at_end, r->delivered_at_end);
            wait_until(reported, run, now_s() + timeout_s, "every member's REPORT");
            for (int i = 0; i < r->nreports; i++)
                if (r->rep_hash[i] != r->hash_at_end || r->rep_n[i] != r->delivered_at_end) {
                    same = 0;
                    fprintf(stderr, "ccpgbench: ORDER: run %u: member %u/%u hash %016llx n %llu; here %016llx n %llu\n", run,
                            r->reporters[i].node, r->reporters[i].pid, (unsigned long long)r->rep_hash[i], (unsigned long long)r->rep_n[i],
                            (unsigned long long)r->hash_at_end, (unsigned long long)r->delivered_at_end);
                }
        }
        int own_ok = receive_only || r->own_delivered == sent;
        if (!own_ok) fprintf(stderr, "ccpgbench: ORDER: run %u: sent %llu, %llu delivered back\n", run, (unsigned long long)sent, (unsigned long long)r->own_delivered);
        int ok = errors == errors_before && same && own_ok; all_ok &= ok;
        double el = r->t_end - r->t_start, ms = el > 0 ? (double)r->delivered / el : 0;
        char p50[32] = "-", p99[32] = "-";
        if (r->nlat) {
            qsort(r->lat, r->nlat, 8, cmp_u64);
            size_t k50 = (r->nlat * 50 + 99) / 100, k99 = (r->nlat * 99 + 99) / 100;
            snprintf(p50, sizeof p50, "%llu", (unsigned long long)r->lat[(k50 ? k50 : 1) - 1]);
            snprintf(p99, sizeof p99, "%llu", (unsigned long long)r->lat[(k99 ? k99 : 1) - 1]);
        }
        printf("cpg size=%u msgs_s=%.0f MB_s=%.2f p50_us=%s p99_us=%s order=%s\n", size, ms, ms * size / 1e6, p50, p99, ok ? "ok" : "FAILED");
        fflush(stdout);
        fprintf(stderr, "ccpgbench: run %u size=%u delivered=%llu hash=%016llx elapsed=%.3fs sent=%llu\n", run, size,
                (unsigned long long)r->delivered, (unsigned long long)r->hash_at_end, el, (unsigned long long)sent);
        if (hash_file) {
            FILE *f = fopen(hash_file, "a");
            if (f) { fprintf(f, "run=%u size=%u hash=%016llx delivered=%llu\n", run, size, (unsigned long long)r->hash_at_end, (unsigned long long)r->delivered_at_end); fclose(f); }
        }
    }
    cpg_finalize(handle);
    return all_ok ? 0 : 1;
}
