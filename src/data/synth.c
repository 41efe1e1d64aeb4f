/*
 * synth.c — the built-in demo data: a deterministic, realistic log of a
 * video platform (`cofi synth`).
 *
 * The model behind the numbers, so that collaborative filtering has
 * something real to find and popularity alone does not:
 *   - Genres: G taste clusters (0.7 sqrt(items), 4..64) of unequal size.
 *     Every item has a primary genre and, one time in four, a secondary one
 *     (clusters overlap).
 *   - Popularity: each item has a long-tail weight 1/(rank+10) over a
 *     random ranking (Zipf-like; the head saturates: every heavy user has
 *     the top items).
 *   - Users: 1-3 preferred genres with random weights, and a taste share in
 *     [0.75, 0.95]: that share of a user's items is drawn from the preferred
 *     genres (by popularity inside the genre), the rest from the whole
 *     catalogue by popularity.
 *   - Activity: lognormal (sigma 1.1: the mean is about 1.8x the median,
 *     a heavy tail of very active users), at least min(5, interactions/users) items per user, scaled so
 *     the rows add up to exactly `interactions`.
 *   - Rows: each row is a distinct (user, item) pair, with the pair's deepest
 *     engagement as its event (watch < like < complete; deeper on taste),
 *     so the matrix has exactly `interactions` non-zeros. Every item occurs
 *     at least once when interactions >= items.
 *   - Time: per user, strictly increasing unix seconds (exponential gaps
 *     over a span of one month to three years starting between mid-2017
 *     and mid-2019), rows grouped by user.
 *
 * Speed: alias tables (Vose) make each draw O(1); distinctness is a stamp
 * per item; rows are formatted by hand into a 1 MiB buffer. Nothing is
 * allocated per row. The same options give the same bytes (with the same
 * C library: the lognormal and exponential draws use exp and log).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cofi_synth_options cofi_synth_options_default(void) {
  cofi_synth_options o;
  o.users = 2000;
  o.items = 1000;
  o.interactions = 60000;
  o.seed = 42;
  return o;
}

/* ---- random numbers ---------------------------------------------------- */

typedef struct rng { uint64_t s; } rng;

static uint64_t next64(rng *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double uniform(rng *r) { return (double)(next64(r) >> 11) * 0x1.0p-53; }
/* Uniform in [0, n), n < 2^32. */
static uint32_t below(rng *r, uint32_t n) {
  return (uint32_t)(((next64(r) >> 32) * (uint64_t)n) >> 32);
}
static double normal(rng *r) { /* Box-Muller, one of the pair */
  double u = 1.0 - uniform(r), v = uniform(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- alias tables ------------------------------------------------------ */

/* Vose's alias method over n weights: draw i with probability w[i]/sum. */
typedef struct alias {
  uint32_t n;
  uint32_t *threshold; /* [n] keep i when the low 32 bits are below it */
  uint32_t *other;     /* [n] else take other[i] */
} alias;

static void alias_free(alias *a) {
  cofi__free(a->threshold);
  cofi__free(a->other);
  a->threshold = a->other = NULL;
}

static int alias_build(alias *a, const double *w, uint32_t n) {
  a->n = n;
  a->threshold = cofi__malloc((size_t)n * sizeof *a->threshold);
  a->other = cofi__malloc((size_t)n * sizeof *a->other);
  double *p = cofi__malloc((size_t)n * sizeof *p);
  uint32_t *small = cofi__malloc((size_t)n * sizeof *small);
  uint32_t *large = cofi__malloc((size_t)n * sizeof *large);
  int rc = COFI_ERR_NOMEM;
  if (!a->threshold || !a->other || !p || !small || !large) goto done;
  double sum = 0;
  for (uint32_t i = 0; i < n; i++) sum += w[i];
  uint32_t ns = 0, nl = 0;
  for (uint32_t i = 0; i < n; i++) {
    p[i] = sum > 0 ? w[i] * n / sum : 1.0;
    if (p[i] < 1.0) small[ns++] = i; else large[nl++] = i;
  }
  while (ns && nl) {
    uint32_t s = small[--ns], l = large[nl - 1];
    a->threshold[s] = (uint32_t)(p[s] * 4294967296.0);
    a->other[s] = l;
    p[l] = (p[l] + p[s]) - 1.0;
    if (p[l] < 1.0) { nl--; small[ns++] = l; }
  }
  /* What is left is 1 up to rounding: always keep it. */
  while (nl) { uint32_t l = large[--nl]; a->threshold[l] = UINT32_MAX; a->other[l] = l; }
  while (ns) { uint32_t s = small[--ns]; a->threshold[s] = UINT32_MAX; a->other[s] = s; }
  rc = COFI_OK;
done:
  cofi__free(p);
  cofi__free(small);
  cofi__free(large);
  if (rc) alias_free(a);
  return rc;
}

static uint32_t alias_draw(const alias *a, rng *r) {
  uint64_t x = next64(r);
  uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)a->n) >> 32);
  return (uint32_t)x < a->threshold[i] ? i : a->other[i];
}

/* ---- output ------------------------------------------------------------ */

#define OUT_CAP ((size_t)1 << 20)

typedef struct out {
  int fd;
  char *buf; /* [OUT_CAP] */
  size_t n;
  const char *path; /* final name, for messages */
  int err;          /* errno of the first failed write */
} out;

static void out_flush(out *o) {
  size_t done = 0;
  while (done < o->n && !o->err) {
    ssize_t w = write(o->fd, o->buf + done, o->n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      o->err = errno;
    } else {
      done += (size_t)w;
    }
  }
  o->n = 0;
}

static inline void out_room(out *o, size_t need) {
  if (o->n + need > OUT_CAP) out_flush(o);
}
static inline void out_bytes(out *o, const char *s, size_t n) {
  out_room(o, n);
  memcpy(o->buf + o->n, s, n);
  o->n += n;
}
static inline void out_str(out *o, const char *s) { out_bytes(o, s, strlen(s)); }
/* Decimal of v, at least `width` digits (zero-padded). */
static inline void out_uint(out *o, uint64_t v, int width) {
  char tmp[24];
  int k = 0;
  do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (k < width) tmp[k++] = '0';
  out_room(o, (size_t)k);
  while (k) o->buf[o->n++] = tmp[--k];
}
/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or line end. */
static void out_csv_field(out *o, const char *s, size_t n) {
  if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n)) {
    out_bytes(o, s, n);
    return;
  }
  out_bytes(o, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') out_bytes(o, "\"", 1);
    out_bytes(o, s + i, 1);
  }
  out_bytes(o, "\"", 1);
}

static int digits_of(uint64_t n) {
  int d = 1;
  while (n >= 10) { n /= 10; d++; }
  return d;
}

/* Joins dir and name into buf; false when it does not fit. */
static bool join(char *buf, size_t size, const char *dir, const char *name) {
  int n = snprintf(buf, size, "%s/%s", dir, name);
  return n > 0 && (size_t)n < size;
}

/* mkdir -p. */
static int make_dirs(const char *dir, cofi_diag *diag) {
  char path[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof path)
    return cofi__fail(diag, COFI_ERR_INVALID, dir, 0,
                      "the output directory name is empty or too long");
  memcpy(path, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != 0) continue;
    char c = path[i];
    path[i] = 0;
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return cofi__fail(diag, COFI_ERR_IO, path, 0,
                        "cannot create directory: %s", strerror(errno));
    path[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return cofi__fail(diag, COFI_ERR_IO, dir, 0, "not a directory");
  return COFI_OK;
}

/* Opens dir/name.tmp for writing; the caller renames it when complete, so
 * an interrupted run never leaves a truncated file under the real name. */
static int out_open(out *o, char *tmp, size_t tmp_size, char *final,
                    size_t final_size, const char *dir, const char *name,
                    cofi_diag *diag) {
  char tmpname[64];
  snprintf(tmpname, sizeof tmpname, "%s.tmp", name);
  if (!join(final, final_size, dir, name) || !join(tmp, tmp_size, dir, tmpname))
    return cofi__fail(diag, COFI_ERR_INVALID, dir, 0,
                      "the output directory name is too long");
  o->path = final;
  o->n = 0;
  o->err = 0;
  o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (o->fd < 0)
    return cofi__fail(diag, COFI_ERR_IO, tmp, 0, "cannot create: %s",
                      strerror(errno));
  return COFI_OK;
}

/* Flushes, closes and renames; on any failure removes the temp file. */
static int out_finish(out *o, const char *tmp, const char *final, bool ok,
                      cofi_diag *diag) {
  if (o->fd < 0) return COFI_OK;
  if (ok) out_flush(o);
  if (close(o->fd) != 0 && !o->err) o->err = errno;
  o->fd = -1;
  if (ok && !o->err && rename(tmp, final) != 0) o->err = errno;
  if (!ok || o->err) {
    unlink(tmp);
    if (ok)
      return cofi__fail(diag, COFI_ERR_IO, final, 0, "cannot write: %s",
                        strerror(o->err));
  }
  return COFI_OK;
}

/* ---- titles ------------------------------------------------------------ */

static const char *const topics[64] = {
    "Travel", "Cooking", "Fitness", "Comedy", "Science", "History", "Music",
    "Gaming", "Nature", "Tech", "Fashion", "Sports", "Art", "Finance", "Cars",
    "Pets", "Gardening", "Yoga", "Space", "Crafts", "Dance", "Film", "Books",
    "Design", "Languages", "Parenting", "Photography", "Architecture", "Ocean",
    "Mountains", "Baking", "Coffee", "Wine", "Chess", "Cycling", "Running",
    "Surfing", "Climbing", "Fishing", "Camping", "Magic", "Anime", "Horror",
    "Mystery", "Romance", "Drama", "Documentary", "Kids", "News", "Politics",
    "Economics", "Psychology", "Philosophy", "Math", "Physics", "Chemistry",
    "Biology", "Medicine", "Robotics", "Coding", "Startups", "Real Estate",
    "Interiors", "Woodworking"};
static const char *const adjectives[32] = {
    "Hidden", "Midnight", "Golden", "Silent", "Wild", "Lost", "Secret",
    "Electric", "Frozen", "Endless", "Little", "Great", "Broken", "Perfect",
    "Last", "First", "Crimson", "Quiet", "Brave", "Curious", "Ancient",
    "Modern", "Simple", "Impossible", "Tiny", "Giant", "Lucky", "Strange",
    "Bright", "Dark", "Caf\xc3\xa9", ("\xc3\x9c" "ber")};
static const char *const nouns[32] = {
    "Garden", "City", "Kitchen", "Journey", "River", "Machine", "Island",
    "Forest", "Road", "Dream", "Storm", "Planet", "Recipe", "Workshop",
    "Guide", "Challenge", "Story", "Experiment", "Map", "Season", "Mountain",
    "Studio", "Market", "Engine", "Library", "Harbor", "Festival", "Lab",
    "Summit", "Night", "Morning", "Secret"};

/* A title for an item of genre g; about one in five holds a comma and one
 * in ten double quotes, so readers must get RFC 4180 right. */
static size_t make_title(char *buf, size_t size, rng *r, uint32_t g) {
  const char *t = topics[g % 64];
  const char *a = adjectives[below(r, 32)];
  const char *n = nouns[below(r, 32)];
  const char *n2 = nouns[below(r, 32)];
  unsigned num = 1 + below(r, 12);
  int len;
  switch (below(r, 10)) {
  case 0: case 1:
    len = snprintf(buf, size, "%s: %s %s, Part %u", t, a, n, num); break;
  case 2:
    len = snprintf(buf, size, "%s: The \"%s\" %s", t, a, n); break;
  case 3: case 4:
    len = snprintf(buf, size, "%s: The %s of the %s %s", t, n, a, n2); break;
  case 5:
    len = snprintf(buf, size, "%s: %s %s (Episode %u)", t, a, n, num); break;
  default:
    len = snprintf(buf, size, "%s: The %s %s", t, a, n); break;
  }
  return len < 0 ? 0 : (size_t)len < size ? (size_t)len : size - 1;
}

/* ---- the generator ----------------------------------------------------- */

typedef struct world {
  uint32_t users, items, genres;
  uint64_t interactions;
  uint32_t *primary;   /* [items] genre */
  uint32_t *secondary; /* [items] genre, or UINT32_MAX */
  double *pop;         /* [items] popularity weight */
  alias global;        /* over items by popularity */
  uint32_t *gstart;    /* [genres+1] into gmembers */
  uint32_t *gmembers;  /* items of each genre (primary or secondary) */
  alias *galias;       /* [genres], over gmembers ranges */
  uint8_t *npref;      /* [users] 1..3 */
  uint32_t *pref;      /* [users x 3] genres */
  float *prefw;        /* [users x 3] cumulative weights, last = 1 */
  float *taste;        /* [users] share of draws from preferred genres */
  uint32_t *count;     /* [users] rows */
  uint32_t *fstart;    /* [users+1] into forced */
  uint32_t *forced;    /* items assigned to make every item occur */
} world;

static void world_free(world *w) {
  cofi__free(w->primary);
  cofi__free(w->secondary);
  cofi__free(w->pop);
  alias_free(&w->global);
  cofi__free(w->gstart);
  cofi__free(w->gmembers);
  if (w->galias)
    for (uint32_t g = 0; g < w->genres; g++) alias_free(&w->galias[g]);
  cofi__free(w->galias);
  cofi__free(w->npref);
  cofi__free(w->pref);
  cofi__free(w->prefw);
  cofi__free(w->taste);
  cofi__free(w->count);
  cofi__free(w->fstart);
  cofi__free(w->forced);
}

/* Items: genres, popularity, and the alias tables to draw them. */
static int build_items(world *w, rng *r) {
  const uint32_t n = w->items, G = w->genres;
  int rc = COFI_ERR_NOMEM;
  double *gw = cofi__malloc(G * sizeof *gw);
  uint32_t *perm = cofi__malloc((size_t)n * sizeof *perm);
  alias galias_pick = {0};
  w->primary = cofi__malloc((size_t)n * sizeof *w->primary);
  w->secondary = cofi__malloc((size_t)n * sizeof *w->secondary);
  w->pop = cofi__malloc((size_t)n * sizeof *w->pop);
  w->gstart = cofi__calloc((size_t)G + 1, sizeof *w->gstart);
  w->galias = cofi__calloc(G, sizeof *w->galias);
  if (!gw || !perm || !w->primary || !w->secondary || !w->pop || !w->gstart ||
      !w->galias)
    goto done;
  /* Unequal genre sizes; the first G items (in a random order) seed one
   * genre each so that none is empty. */
  for (uint32_t g = 0; g < G; g++) gw[g] = 1.0 / pow(g + 2.0, 0.6);
  if ((rc = alias_build(&galias_pick, gw, G))) goto done;
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = below(r, i), t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
  for (uint32_t k = 0; k < n; k++) {
    uint32_t i = perm[k];
    w->primary[i] = k < G ? k : alias_draw(&galias_pick, r);
    w->secondary[i] = UINT32_MAX;
    if (G > 1 && below(r, 4) == 0) {
      uint32_t s = below(r, G - 1);
      w->secondary[i] = s >= w->primary[i] ? s + 1 : s;
    }
  }
  /* Popularity by a fresh random rank. */
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = below(r, i), t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
  for (uint32_t k = 0; k < n; k++) w->pop[perm[k]] = 1.0 / pow(k + 10.0, 1.0);
  rc = COFI_ERR_NOMEM;
  if (alias_build(&w->global, w->pop, n)) goto done;
  for (uint32_t i = 0; i < n; i++) {
    w->gstart[w->primary[i] + 1]++;
    if (w->secondary[i] != UINT32_MAX) w->gstart[w->secondary[i] + 1]++;
  }
  for (uint32_t g = 0; g < G; g++) w->gstart[g + 1] += w->gstart[g];
  w->gmembers = cofi__malloc(((size_t)w->gstart[G] + 1) * sizeof *w->gmembers);
  double *mw = cofi__malloc(((size_t)w->gstart[G] + 1) * sizeof *mw);
  if (!w->gmembers || !mw) { cofi__free(mw); goto done; }
  {
    uint32_t *fill = perm; /* reused: next free slot per genre */
    for (uint32_t g = 0; g < G; g++) fill[g] = w->gstart[g];
    for (uint32_t i = 0; i < n; i++) {
      w->gmembers[fill[w->primary[i]]++] = i;
      if (w->secondary[i] != UINT32_MAX) w->gmembers[fill[w->secondary[i]]++] = i;
    }
  }
  for (uint32_t k = 0; k < w->gstart[G]; k++) mw[k] = w->pop[w->gmembers[k]];
  rc = COFI_OK;
  for (uint32_t g = 0; g < G && !rc; g++)
    rc = alias_build(&w->galias[g], mw + w->gstart[g],
                     w->gstart[g + 1] - w->gstart[g]);
  cofi__free(mw);
done:
  alias_free(&galias_pick);
  cofi__free(gw);
  cofi__free(perm);
  return rc;
}

/* Users: preferred genres, taste share, and how many rows each gets. */
static int build_users(world *w, rng *r) {
  const uint32_t U = w->users, G = w->genres;
  w->npref = cofi__malloc(U);
  w->pref = cofi__malloc((size_t)U * 3 * sizeof *w->pref);
  w->prefw = cofi__malloc((size_t)U * 3 * sizeof *w->prefw);
  w->taste = cofi__malloc((size_t)U * sizeof *w->taste);
  w->count = cofi__malloc((size_t)U * sizeof *w->count);
  double *act = cofi__malloc((size_t)U * sizeof *act);
  int rc = COFI_ERR_NOMEM;
  if (!w->npref || !w->pref || !w->prefw || !w->taste || !w->count || !act)
    goto done;
  for (uint32_t u = 0; u < U; u++) {
    double x = uniform(r);
    uint32_t np = x < 0.45 ? 1 : x < 0.85 ? 2 : 3;
    if (np > G) np = G;
    double cw[3], sum = 0;
    for (uint32_t k = 0; k < np; k++) {
      uint32_t g;
      bool dup;
      do { /* popular genres are preferred more often (low g = larger) */
        g = (uint32_t)(uniform(r) * uniform(r) * G);
        dup = false;
        for (uint32_t j = 0; j < k; j++) dup |= w->pref[(size_t)u * 3 + j] == g;
      } while (dup);
      w->pref[(size_t)u * 3 + k] = g;
      cw[k] = (k == 0 ? 1.0 : 0.3 + 0.5 * uniform(r));
      sum += cw[k];
    }
    double acc = 0;
    for (uint32_t k = 0; k < np; k++) {
      acc += cw[k] / sum;
      w->prefw[(size_t)u * 3 + k] = k + 1 == np ? 1.0f : (float)acc;
    }
    w->npref[u] = (uint8_t)np;
    w->taste[u] = (float)(0.75 + 0.20 * uniform(r));
    act[u] = exp(1.1 * normal(r));
  }
  /* Rows per user: a floor, lognormal shares of the rest, a cap. */
  uint64_t total = w->interactions;
  uint64_t floor_n = total / U < 5 ? total / U : 5;
  if (floor_n < 1) floor_n = 1;
  uint64_t cap = (uint64_t)w->items * 6 / 10;
  /* Dense requests need the whole catalogue as the cap (and some slack so
   * the remainder below spreads quickly). */
  if (cap < floor_n || (uint64_t)U * cap < total + total / 4) cap = w->items;
  double asum = 0;
  for (uint32_t u = 0; u < U; u++) asum += act[u];
  uint64_t extra = total - floor_n * U, given = 0;
  for (uint32_t u = 0; u < U; u++) {
    uint64_t c = floor_n + (uint64_t)((double)extra * (act[u] / asum));
    if (c > cap) c = cap;
    w->count[u] = (uint32_t)c;
    given += c;
  }
  /* Rounding and the cap leave (or, rarely, exceed) a remainder: spread it
   * one row at a time from a random user on. */
  uint32_t u = below(r, U);
  while (given < total) {
    if (w->count[u] < cap) { w->count[u]++; given++; }
    u = u + 1 == U ? 0 : u + 1;
  }
  while (given > total) {
    if (w->count[u] > floor_n) { w->count[u]--; given--; }
    u = u + 1 == U ? 0 : u + 1;
  }
  rc = COFI_OK;
done:
  cofi__free(act);
  return rc;
}

static bool prefers(const world *w, uint32_t u, uint32_t g) {
  for (uint32_t k = 0; k < w->npref[u]; k++)
    if (w->pref[(size_t)u * 3 + k] == g) return true;
  return false;
}

/* Gives every item (up to `interactions` of them) to one user, preferably
 * one who likes its genre, so that the whole catalogue occurs in the log.
 * The forced items count towards the users' rows. */
static int assign_forced(world *w, rng *r) {
  const uint32_t U = w->users, n = w->items;
  uint32_t n_forced = w->interactions < n ? (uint32_t)w->interactions : n;
  uint32_t *owner = cofi__malloc((size_t)n * sizeof *owner);
  uint32_t *used = cofi__calloc(U, sizeof *used);
  double *cw = cofi__malloc((size_t)U * sizeof *cw);
  alias by_count = {0};
  int rc = COFI_ERR_NOMEM;
  w->fstart = cofi__calloc((size_t)U + 1, sizeof *w->fstart);
  w->forced = cofi__malloc(((size_t)n_forced + 1) * sizeof *w->forced);
  if (!owner || !used || !cw || !w->fstart || !w->forced) goto done;
  for (uint32_t u = 0; u < U; u++) cw[u] = w->count[u];
  if ((rc = alias_build(&by_count, cw, U))) goto done;
  for (uint32_t i = 0; i < n; i++) owner[i] = UINT32_MAX;
  for (uint32_t i = 0; i < n_forced; i++) {
    uint32_t u = UINT32_MAX;
    for (int tries = 0; tries < 32; tries++) {
      uint32_t c = alias_draw(&by_count, r);
      if (used[c] < w->count[c] && (tries >= 16 || prefers(w, c, w->primary[i]))) {
        u = c;
        break;
      }
    }
    if (u == UINT32_MAX) { /* scan for room; the rows outnumber n_forced */
      u = below(r, U);
      while (used[u] >= w->count[u]) u = u + 1 == U ? 0 : u + 1;
    }
    used[u]++;
    owner[i] = u;
  }
  for (uint32_t u = 0; u < U; u++) w->fstart[u + 1] = w->fstart[u] + used[u];
  for (uint32_t u = 0; u < U; u++) used[u] = w->fstart[u];
  for (uint32_t i = 0; i < n; i++)
    if (owner[i] != UINT32_MAX) w->forced[used[owner[i]]++] = i;
  rc = COFI_OK;
done:
  alias_free(&by_count);
  cofi__free(owner);
  cofi__free(used);
  cofi__free(cw);
  return rc;
}

/* One more distinct item for user u: from a preferred genre (share taste)
 * or the whole catalogue, by popularity; repeated draws give way to the
 * catalogue, then to a scan for any item the user does not have yet. */
static uint32_t draw_item(const world *w, rng *r, uint32_t u,
                          const uint32_t *stamp, uint32_t mark) {
  for (int tries = 0; tries < 24; tries++) {
    uint32_t i;
    if (tries < 8 && uniform(r) < w->taste[u]) {
      float x = (float)uniform(r);
      uint32_t k = 0;
      while (k + 1 < w->npref[u] && x >= w->prefw[(size_t)u * 3 + k]) k++;
      uint32_t g = w->pref[(size_t)u * 3 + k];
      i = w->gmembers[w->gstart[g] + alias_draw(&w->galias[g], r)];
    } else {
      i = alias_draw(&w->global, r);
    }
    if (stamp[i] != mark) return i;
  }
  uint32_t i = below(r, w->items);
  while (stamp[i] == mark) i = i + 1 == w->items ? 0 : i + 1;
  return i;
}

static int write_interactions(const world *w, rng *r, out *o) {
  const int uw = digits_of(w->users) < 5 ? 5 : digits_of(w->users);
  const int iw = digits_of(w->items) < 5 ? 5 : digits_of(w->items);
  uint32_t max_count = 0;
  for (uint32_t u = 0; u < w->users; u++)
    if (w->count[u] > max_count) max_count = w->count[u];
  uint32_t *stamp = cofi__calloc(w->items, sizeof *stamp);
  uint32_t *list = cofi__malloc(((size_t)max_count + 1) * sizeof *list);
  double *gaps = cofi__malloc(((size_t)max_count + 1) * sizeof *gaps);
  char *ids = cofi__malloc((size_t)w->items * (size_t)(iw + 1));
  int rc = COFI_ERR_NOMEM;
  if (!stamp || !list || !gaps || !ids) goto done;
  /* Item IDs rendered once: "v00042" at ids + i * (iw + 1). */
  for (uint32_t i = 0; i < w->items; i++) {
    char *p = ids + (size_t)i * (size_t)(iw + 1);
    p[0] = 'v';
    uint32_t v = i + 1;
    for (int k = iw; k >= 1; k--) { p[k] = (char)('0' + v % 10); v /= 10; }
  }
  static const char *const ev_name[3] = {",watch,", ",like,", ",complete,"};
  static const size_t ev_len[3] = {7, 6, 10};
  out_str(o, "user_id,item_id,event,timestamp\n");
  const int64_t t0 = 1500000000; /* 2017-07-14 02:40 UTC */
  char uid[24];
  for (uint32_t u = 0; u < w->users; u++) {
    uint32_t mark = u + 1, n = 0;
    for (uint32_t k = w->fstart[u]; k < w->fstart[u + 1]; k++) {
      stamp[w->forced[k]] = mark;
      list[n++] = w->forced[k];
    }
    while (n < w->count[u]) {
      uint32_t i = draw_item(w, r, u, stamp, mark);
      stamp[i] = mark;
      list[n++] = i;
    }
    for (uint32_t k = n; k > 1; k--) { /* forced items anywhere in time */
      uint32_t j = below(r, k), t = list[k - 1];
      list[k - 1] = list[j];
      list[j] = t;
    }
    uid[0] = 'u';
    uint32_t v = u + 1;
    for (int k = uw; k >= 1; k--) { uid[k] = (char)('0' + v % 10); v /= 10; }
    /* Times: n points spread over the user's span with exponential gaps
     * (a Poisson process conditioned on its length), + k so that they
     * strictly increase. */
    double span = 30 * 86400.0 + uniform(r) * 3 * 365 * 86400.0;
    int64_t start = t0 + (int64_t)(uniform(r) * 2 * 365 * 86400.0);
    double total = 0;
    for (uint32_t k = 0; k <= n; k++) {
      gaps[k] = -log(1.0 - uniform(r));
      total += gaps[k];
    }
    double cum = 0;
    for (uint32_t k = 0; k < n; k++) {
      uint32_t i = list[k];
      cum += gaps[k];
      int64_t t = start + (int64_t)k + (int64_t)(span * (cum / total));
      bool on_taste = prefers(w, u, w->primary[i]) ||
                      (w->secondary[i] != UINT32_MAX && prefers(w, u, w->secondary[i]));
      double x = uniform(r);
      int e = on_taste ? (x < 0.35 ? 0 : x < 0.65 ? 1 : 2)
                       : (x < 0.70 ? 0 : x < 0.80 ? 1 : 2);
      out_room(o, 96);
      memcpy(o->buf + o->n, uid, (size_t)uw + 1);
      o->n += (size_t)uw + 1;
      o->buf[o->n++] = ',';
      memcpy(o->buf + o->n, ids + (size_t)i * (size_t)(iw + 1), (size_t)iw + 1);
      o->n += (size_t)iw + 1;
      memcpy(o->buf + o->n, ev_name[e], ev_len[e]);
      o->n += ev_len[e];
      out_uint(o, (uint64_t)t, 1);
      o->buf[o->n++] = '\n';
    }
  }
  rc = COFI_OK;
done:
  cofi__free(stamp);
  cofi__free(list);
  cofi__free(gaps);
  cofi__free(ids);
  return rc;
}

static void write_items(const world *w, rng *r, out *o) {
  const int iw = digits_of(w->items) < 5 ? 5 : digits_of(w->items);
  char title[256];
  out_str(o, "item_id,title\n");
  for (uint32_t i = 0; i < w->items; i++) {
    out_bytes(o, "v", 1);
    out_uint(o, i + 1, iw);
    out_bytes(o, ",", 1);
    size_t n = make_title(title, sizeof title, r, w->primary[i]);
    out_csv_field(o, title, n);
    out_bytes(o, "\n", 1);
  }
}

int cofi_synth(const cofi_synth_options *opt, const char *dir, cofi_diag *diag) {
  cofi_synth_options d = cofi_synth_options_default();
  if (!opt) opt = &d;
  if (!dir)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output directory");
  if (opt->users < 1 || opt->items < 1 || opt->users == UINT32_MAX ||
      opt->items == UINT32_MAX)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "users and items must be between 1 and 4294967294");
  if (opt->interactions < opt->users)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "%llu interactions cannot give each of the %u users "
                      "one row",
                      (unsigned long long)opt->interactions, opt->users);
  if (opt->interactions > (uint64_t)opt->users * opt->items)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "%llu interactions exceed the %llu distinct user-item "
                      "pairs of %u users and %u items",
                      (unsigned long long)opt->interactions,
                      (unsigned long long)opt->users * opt->items, opt->users,
                      opt->items);
  world w;
  memset(&w, 0, sizeof w);
  w.users = opt->users;
  w.items = opt->items;
  w.interactions = opt->interactions;
  uint32_t G = (uint32_t)(sqrt((double)w.items) * 0.7 + 0.5);
  if (G < 4) G = 4;
  if (G > 64) G = 64;
  if (G > w.items) G = w.items;
  w.genres = G;
  /* Independent streams, so the titles do not change with --interactions. */
  rng r_items = {opt->seed ^ 0x6974656d73ull};
  rng r_users = {opt->seed ^ 0x7573657273ull};
  rng r_log = {opt->seed ^ 0x6c6f67ull};
  rng r_titles = {opt->seed ^ 0x7469746c6573ull};
  out o = {.fd = -1};
  char tmp[4200], final[4200];
  int rc = make_dirs(dir, diag);
  if (rc) return rc;
  o.buf = cofi__malloc(OUT_CAP);
  if (!o.buf || build_items(&w, &r_items) || build_users(&w, &r_users) ||
      assign_forced(&w, &r_users)) {
    rc = cofi__fail(diag, COFI_ERR_NOMEM, dir, 0, "out of memory");
    goto done;
  }
  if ((rc = out_open(&o, tmp, sizeof tmp, final, sizeof final, dir,
                     "interactions.csv", diag)))
    goto done;
  if (write_interactions(&w, &r_log, &o)) {
    out_finish(&o, tmp, final, false, diag);
    rc = cofi__fail(diag, COFI_ERR_NOMEM, dir, 0, "out of memory");
    goto done;
  }
  if ((rc = out_finish(&o, tmp, final, true, diag))) goto done;
  if ((rc = out_open(&o, tmp, sizeof tmp, final, sizeof final, dir,
                     "items.csv", diag)))
    goto done;
  write_items(&w, &r_titles, &o);
  rc = out_finish(&o, tmp, final, true, diag);
done:
  if (o.fd >= 0) out_finish(&o, tmp, final, false, diag);
  cofi__free(o.buf);
  world_free(&w);
  return rc;
}
