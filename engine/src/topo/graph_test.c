/* SPDX-License-Identifier: MIT */
/* graph_test.c: graph builders, adjacency invariants, mixing weights and
 * describe() against closed forms and brute force. */
#include "fm_test.h"

#include "core/core.h"
#include "topo/graph.h"

#define PI 3.14159265358979323846

static fmi_graph *
mk(fmi_graph_spec s)
{
	fmi_graph *g = NULL;
	fm_error e = { 0 };
	int rc = fmi_graph_new(&s, &g, &e);
	if (rc != FM_OK) {
		print_error("%s: %s\n", s.kind, e.msg);
	}
	assert_int_equal(rc, FM_OK);
	assert_non_null(g);
	return g;
}

static fmi_adj
round_of(fmi_graph *g, uint32_t r)
{
	fmi_adj a;
	fm_error e;
	FMT_PASS(fmi_graph_round(g, r, &a, &e));
	return a;
}

static fmi_graph_desc
desc(fmi_graph *g)
{
	fmi_graph_desc d;
	fm_error e = { 0 };
	int rc = fmi_graph_describe(g, &d, &e);
	if (rc != FM_OK) {
		print_error("describe: %s\n", e.msg);
	}
	assert_int_equal(rc, FM_OK);
	return d;
}

static int
has_arc(const uint32_t *off, const uint32_t *adj, uint32_t i, uint32_t j)
{
	for (uint32_t p = off[i]; p < off[i + 1]; p++) {
		if (adj[p] == j) {
			return 1;
		}
	}
	return 0;
}

/* Sorted, duplicate- and loop-free rows; in == out (undirected: symmetric),
 * or out the transpose of in (directed). */
static void
check_adj(const fmi_adj *a)
{
	for (uint32_t i = 0; i < a->n; i++) {
		for (uint32_t p = a->in_off[i]; p < a->in_off[i + 1]; p++) {
			uint32_t j = a->in_adj[p];
			assert_true(j < a->n);
			assert_true(j != i);
			if (p > a->in_off[i]) {
				assert_true(a->in_adj[p - 1] < j);
			}
			assert_true(has_arc(a->out_off, a->out_adj, j, i));
			if (!a->directed) {
				assert_true(has_arc(a->in_off, a->in_adj, j, i));
			}
		}
		for (uint32_t p = a->out_off[i] + 1; p < a->out_off[i + 1]; p++) {
			assert_true(a->out_adj[p - 1] < a->out_adj[p]);
		}
	}
	assert_int_equal(a->in_off[a->n], a->out_off[a->n]);
	if (!a->directed) {
		assert_true(a->in_off == a->out_off ||
		    memcmp(a->in_off, a->out_off, (a->n + 1) * 4) == 0);
	}
}

static int
same_adj(const fmi_adj *a, const fmi_adj *b)
{
	if (a->n != b->n || a->in_off[a->n] != b->in_off[b->n]) {
		return 0;
	}
	return memcmp(a->in_off, b->in_off, (a->n + 1) * 4) == 0 &&
	    memcmp(a->in_adj, b->in_adj, a->in_off[a->n] * 4) == 0;
}

/* ---- closed forms -------------------------------------------------------- */

static void
test_ring(void **state)
{
	(void)state;
	for (uint32_t n = 3; n <= 40; n++) {
		fmi_graph *g = mk((fmi_graph_spec){ .kind = "ring", .n = n });
		fmi_graph_desc d = desc(g);
		double slem = 0;
		for (uint32_t k = 1; k < n; k++) {
			double l = 1.0 / 3 + 2.0 / 3 * cos(2 * PI * k / n);
			slem = fmax(slem, fabs(l));
		}
		assert_int_equal(d.nodes, n);
		assert_int_equal(d.edges, n);
		assert_int_equal(d.degree_min, 2);
		assert_int_equal(d.degree_max, 2);
		assert_true(d.degree_mean == 2.0);
		assert_true(d.connected);
		assert_int_equal(d.diameter, n / 2);
		assert_true(fabs(d.slem - slem) < 1e-9);
		assert_true(fabs(d.spectral_gap - (1 - slem)) < 1e-9);
		assert_int_equal(d.samples, 1);
		fmi_graph_free(g);
	}
	/* n = 2 is one edge, n = 1 none */
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "ring", .n = 2 });
	fmi_graph_desc d = desc(g);
	assert_int_equal(d.edges, 1);
	assert_int_equal(d.diameter, 1);
	fmi_graph_free(g);
	g = mk((fmi_graph_spec){ .kind = "ring", .n = 1 });
	d = desc(g);
	assert_int_equal(d.edges, 0);
	assert_int_equal(d.diameter, 0);
	assert_true(d.connected);
	assert_true(d.spectral_gap == 1.0);
	fmi_graph_free(g);
}

static void
test_complete(void **state)
{
	(void)state;
	for (uint32_t n = 2; n <= 12; n++) {
		fmi_graph *g = mk((fmi_graph_spec){ .kind = "complete", .n = n });
		fmi_graph_desc d = desc(g);
		assert_int_equal(d.edges, n * (n - 1) / 2);
		assert_int_equal(d.degree_min, n - 1);
		assert_int_equal(d.degree_max, n - 1);
		assert_int_equal(d.diameter, 1);
		assert_true(fabs(d.spectral_gap - 1.0) < 1e-12);
		assert_true(fabs(d.slem) < 1e-12);
		/* W = J / n */
		fmi_adj a = round_of(g, 1);
		assert_true(fabs(fmi_adj_weight(&a, 0, 1) - 1.0 / n) < 1e-15);
		assert_true(fabs(fmi_adj_weight(&a, 1, 1) - 1.0 / n) < 1e-12);
		fmi_graph_free(g);
	}
}

static void
test_torus(void **state)
{
	(void)state;
	static const uint32_t rc[][2] = { { 3, 3 }, { 4, 4 }, { 4, 5 },
		{ 5, 7 }, { 6, 3 }, { 2, 5 }, { 5, 2 }, { 2, 2 }, { 1, 5 },
		{ 1, 1 }, { 8, 8 } };
	for (size_t t = 0; t < FMI_ARRAY_LEN(rc); t++) {
		uint32_t r = rc[t][0], c = rc[t][1];
		fmi_graph *g = mk((fmi_graph_spec){ .kind = "torus", .rows = r,
		    .cols = c });
		fmi_graph_desc d = desc(g);
		fmi_adj a = round_of(g, 1);
		check_adj(&a);
		uint32_t deg = (r >= 3 ? 2 : r - 1) + (c >= 3 ? 2 : c - 1);
		assert_int_equal(d.nodes, r * c);
		assert_int_equal(d.degree_min, deg);
		assert_int_equal(d.degree_max, deg);
		assert_int_equal(d.edges, (uint64_t)r * c * deg / 2);
		assert_int_equal(d.diameter, r / 2 + c / 2);
		assert_true(d.connected);
		fmi_graph_free(g);
	}
	/* n given must agree with rows * cols */
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "torus", .n = 12,
	    .rows = 3, .cols = 4 });
	assert_int_equal(fmi_graph_n(g), 12);
	fmi_graph_free(g);
}

static void
test_star(void **state)
{
	(void)state;
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "star", .n = 6 });
	fmi_graph_desc d = desc(g);
	assert_int_equal(d.edges, 5);
	assert_int_equal(d.degree_min, 1);
	assert_int_equal(d.degree_max, 5);
	assert_int_equal(d.diameter, 2);
	fmi_adj a = round_of(g, 1);
	assert_true(fabs(fmi_adj_weight(&a, 3, 0) - 1.0 / 6) < 1e-15);
	assert_true(fabs(fmi_adj_weight(&a, 3, 3) - 5.0 / 6) < 1e-15);
	assert_true(fmi_adj_weight(&a, 3, 4) == 0.0);
	fmi_graph_free(g);

	/* big trees: structure only; the spectral describe refuses */
	g = mk((fmi_graph_spec){ .kind = "star", .n = 20001 });
	fm_error e = { 0 };
	FMT_FAIL(fmi_graph_describe(g, &d, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "4096"));
	FMT_PASS(fmi_graph_describe_ex(g, FMI_GRAPH_DESCRIBE_NO_SPECTRAL, &d,
	    &e));
	assert_int_equal(d.diameter, 2);
	assert_int_equal(d.degree_max, 20000);
	assert_true(d.connected);
	assert_true(isnan(d.slem) && isnan(d.spectral_gap));
	fmi_graph_free(g);
}

/* Floyd-Warshall diameter (UINT32_MAX when disconnected) as a reference. */
static uint32_t
ref_diameter(const fmi_adj *a)
{
	uint32_t n = a->n, inf = UINT32_MAX / 4, diam = 0;
	uint32_t *d = malloc((size_t)n * n * sizeof *d);
	for (uint32_t i = 0; i < n * n; i++) {
		d[i] = inf;
	}
	for (uint32_t i = 0; i < n; i++) {
		d[i * n + i] = 0;
		for (uint32_t p = a->out_off[i]; p < a->out_off[i + 1]; p++) {
			d[i * n + a->out_adj[p]] = 1;
		}
	}
	for (uint32_t k = 0; k < n; k++) {
		for (uint32_t i = 0; i < n; i++) {
			for (uint32_t j = 0; j < n; j++) {
				uint32_t v = d[i * n + k] + d[k * n + j];
				if (v < d[i * n + j]) {
					d[i * n + j] = v;
				}
			}
		}
	}
	for (uint32_t i = 0; i < n * n; i++) {
		diam = d[i] == inf ? UINT32_MAX : FMI_MAX(diam, d[i]);
		if (diam == UINT32_MAX) {
			break;
		}
	}
	free(d);
	return diam;
}

static void
test_diameter_reference(void **state)
{
	(void)state;
	static const double ps[] = { 0.03, 0.06, 0.1, 0.2, 0.5, 0.9 };
	int seen_disconnected = 0, seen_connected = 0;
	for (size_t t = 0; t < FMI_ARRAY_LEN(ps); t++) {
		for (uint64_t seed = 1; seed <= 4; seed++) {
			uint32_t n = seed % 2 ? 40 : 150; /* bitset and list BFS */
			fmi_graph *g = mk((fmi_graph_spec){
			    .kind = "erdos_renyi", .n = n, .p = ps[t],
			    .seed = seed });
			fmi_graph_desc d = desc(g);
			fmi_adj a = round_of(g, 1);
			check_adj(&a);
			assert_int_equal(d.diameter, ref_diameter(&a));
			assert_int_equal(d.connected, d.diameter != UINT32_MAX);
			seen_connected |= d.connected;
			seen_disconnected |= !d.connected;
			fmi_graph_free(g);
		}
	}
	assert_true(seen_connected && seen_disconnected);
}

/* ---- builders ----------------------------------------------------------- */

static const uint32_t dir_edges[] = { 0, 1, 1, 2, 2, 0, 2, 3, 3, 2, 0, 1 };
static const uint32_t und_edges[] = { 0, 1, 1, 0, 1, 2, 3, 4, 2, 1 };

static fmi_graph_spec
spec_of(int i)
{
	static const fmi_graph_spec specs[] = {
		{ .kind = "ring", .n = 17 },
		{ .kind = "torus", .rows = 4, .cols = 6 },
		{ .kind = "torus", .rows = 2, .cols = 2 },
		{ .kind = "complete", .n = 9 },
		{ .kind = "kregular", .n = 30, .k = 3, .seed = 5 },
		{ .kind = "kregular", .n = 12, .k = 9, .seed = 5 },
		{ .kind = "erdos_renyi", .n = 50, .p = 0.1, .seed = 2 },
		{ .kind = "small_world", .n = 40, .k = 4, .p = 0.3, .seed = 3 },
		{ .kind = "small_world", .n = 9, .k = 8, .p = 1.0, .seed = 3 },
		{ .kind = "edges", .n = 4, .edges = dir_edges, .nedges = 6,
		    .directed = 1 },
		{ .kind = "edges", .n = 5, .edges = und_edges, .nedges = 5 },
		{ .kind = "star", .n = 8 },
		{ .kind = "matching", .n = 11, .seed = 4 },
		{ .kind = "random_kregular", .n = 20, .k = 4, .seed = 4 },
	};
	return specs[i];
}
#define NSPECS 14

static void
test_invariants(void **state)
{
	(void)state;
	for (int i = 0; i < NSPECS; i++) {
		fmi_graph *g = mk(spec_of(i));
		for (uint32_t r = 1; r <= 4; r++) {
			fmi_adj a = round_of(g, r);
			assert_int_equal(a.directed, fmi_graph_directed(g));
			check_adj(&a);
		}
		fmi_graph_free(g);
	}
}

static void
test_edges(void **state)
{
	(void)state;
	fmi_graph *g = mk(spec_of(10)); /* undirected, duplicates collapse */
	fmi_adj a = round_of(g, 1);
	assert_int_equal(a.in_off[5], 6); /* {0,1}, {1,2}, {3,4} */
	assert_true(has_arc(a.in_off, a.in_adj, 4, 3));
	assert_false(has_arc(a.in_off, a.in_adj, 0, 2));
	assert_string_equal(fmi_graph_kind(g), "edges");
	fmi_graph_free(g);

	g = mk(spec_of(9)); /* directed: 0->1 ->2 ->0, 2<->3 */
	a = round_of(g, 1);
	assert_true(fmi_graph_directed(g));
	assert_int_equal(a.in_off[4], 5);
	assert_true(has_arc(a.in_off, a.in_adj, 1, 0));  /* 0 -> 1 */
	assert_false(has_arc(a.in_off, a.in_adj, 0, 1));
	assert_true(has_arc(a.out_off, a.out_adj, 0, 1));
	/* W_ij = 1/(1 + in_i): peer 2 has in-neighbours 1 and 3 */
	assert_true(fabs(fmi_adj_weight(&a, 2, 1) - 1.0 / 3) < 1e-15);
	assert_true(fabs(fmi_adj_weight(&a, 2, 2) - 1.0 / 3) < 1e-15);
	assert_true(fmi_adj_weight(&a, 2, 0) == 0.0);
	fmi_graph_desc d = desc(g);
	assert_int_equal(d.edges, 5);
	assert_true(d.connected);
	assert_int_equal(d.diameter, 3); /* 3 -> 2 -> 0 -> 1 */
	fmi_graph_free(g);

	/* a directed cycle: W = (I + P)/2, eigenvalue moduli |cos(pi k/n)| */
	uint32_t cyc[] = { 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0 };
	g = mk((fmi_graph_spec){ .kind = "edges", .n = 6, .edges = cyc,
	    .nedges = 6, .directed = 1 });
	d = desc(g);
	assert_int_equal(d.diameter, 5);
	assert_true(fabs(d.slem - cos(PI / 6)) < 1e-9);
	fmi_graph_free(g);

	/* a directed path is not strongly connected */
	g = mk((fmi_graph_spec){ .kind = "edges", .n = 3, .edges = cyc,
	    .nedges = 2, .directed = 1 });
	d = desc(g);
	assert_false(d.connected);
	assert_int_equal(d.diameter, UINT32_MAX);
	fmi_graph_free(g);
}

static void
test_kregular(void **state)
{
	(void)state;
	static const uint32_t nk[][2] = { { 10, 3 }, { 30, 4 }, { 101, 6 },
		{ 64, 16 }, { 12, 9 }, { 11, 10 }, { 20, 0 }, { 2, 1 },
		{ 200, 3 }, { 9, 4 }, { 101, 50 }, { 201, 100 } };
	for (size_t t = 0; t < FMI_ARRAY_LEN(nk); t++) {
		for (uint64_t seed = 1; seed <= 3; seed++) {
			fmi_graph *g = mk((fmi_graph_spec){ .kind = "kregular",
			    .n = nk[t][0], .k = nk[t][1], .seed = seed });
			fmi_adj a = round_of(g, 1);
			check_adj(&a);
			for (uint32_t i = 0; i < a.n; i++) {
				assert_int_equal(fmi_adj_in_degree(&a, i),
				    nk[t][1]);
			}
			fmi_graph_free(g);
		}
	}
}

/* Same spec and seed: same graph; another seed: another graph. */
static void
check_seeds(fmi_graph_spec s)
{
	fmi_graph *g1 = mk(s), *g2 = mk(s);
	s.seed++;
	fmi_graph *g3 = mk(s);
	fmi_adj a1 = round_of(g1, 1), a2 = round_of(g2, 1), a3 = round_of(g3, 1);
	assert_true(same_adj(&a1, &a2));
	assert_false(same_adj(&a1, &a3));
	fmi_graph_free(g1);
	fmi_graph_free(g2);
	fmi_graph_free(g3);
}

static void
test_seeds(void **state)
{
	(void)state;
	check_seeds((fmi_graph_spec){ .kind = "kregular", .n = 40, .k = 3,
	    .seed = 7 });
	check_seeds((fmi_graph_spec){ .kind = "erdos_renyi", .n = 40, .p = 0.2,
	    .seed = 7 });
	check_seeds((fmi_graph_spec){ .kind = "small_world", .n = 40, .k = 4,
	    .p = 0.2, .seed = 7 });
	check_seeds((fmi_graph_spec){ .kind = "matching", .n = 40, .seed = 7 });
	check_seeds((fmi_graph_spec){ .kind = "random_kregular", .n = 40,
	    .k = 3, .seed = 7 });
}

static void
test_small_world(void **state)
{
	(void)state;
	static const double ps[] = { 0.0, 0.1, 0.5, 1.0 };
	for (size_t t = 0; t < FMI_ARRAY_LEN(ps); t++) {
		fmi_graph *g = mk((fmi_graph_spec){ .kind = "small_world",
		    .n = 60, .k = 6, .p = ps[t], .seed = 11 });
		fmi_adj a = round_of(g, 1);
		check_adj(&a);
		fmi_graph_desc d = desc(g);
		assert_int_equal(d.edges, 60 * 6 / 2);
		int lattice = 1; /* still the ring lattice? */
		for (uint32_t i = 0; i < 60; i++) {
			for (uint32_t j = 1; j <= 3; j++) {
				lattice &= has_arc(a.in_off, a.in_adj, i,
				    (i + j) % 60);
			}
		}
		assert_int_equal(lattice, ps[t] == 0.0);
		if (ps[t] == 0.0) {
			assert_int_equal(d.diameter, 10); /* ceil(30 / 3) */
		}
		fmi_graph_free(g);
	}
}

static void
test_erdos_renyi(void **state)
{
	(void)state;
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "erdos_renyi", .n = 20,
	    .p = 0.0, .seed = 1 });
	fmi_graph_desc d = desc(g);
	assert_int_equal(d.edges, 0);
	assert_false(d.connected);
	assert_int_equal(d.diameter, UINT32_MAX);
	assert_true(fabs(d.slem - 1.0) < 1e-12);
	fmi_graph_free(g);
	g = mk((fmi_graph_spec){ .kind = "erdos_renyi", .n = 20, .p = 1.0 });
	d = desc(g);
	assert_int_equal(d.edges, 190);
	fmi_graph_free(g);
	/* mean edge count within 5 sigma of p n (n-1) / 2 */
	g = mk((fmi_graph_spec){ .kind = "erdos_renyi", .n = 300, .p = 0.05,
	    .seed = 9 });
	d = desc(g);
	double m = 0.05 * 300 * 299 / 2, sd = sqrt(m * 0.95);
	assert_true(fabs((double)d.edges - m) < 5 * sd);
	fmi_graph_free(g);
}

/* ---- time-varying -------------------------------------------------------- */

static void
check_matching(fmi_graph *g, uint32_t r, uint32_t n)
{
	fmi_adj a = round_of(g, r);
	check_adj(&a);
	uint32_t unmatched = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = fmi_adj_in_degree(&a, i);
		assert_true(k <= 1);
		unmatched += k == 0;
	}
	assert_int_equal(unmatched, n % 2);
}

static void
test_matching(void **state)
{
	(void)state;
	for (uint32_t n = 2; n <= 13; n++) {
		fmi_graph *g = mk((fmi_graph_spec){ .kind = "matching", .n = n,
		    .seed = 3 });
		assert_true(fmi_graph_time_varying(g));
		for (uint32_t r = 1; r <= 20; r++) {
			check_matching(g, r, n);
		}
		fmi_graph_free(g);
	}
	/* deterministic in (seed, round), whatever was asked before */
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "matching", .n = 16,
	    .seed = 5 });
	fmi_graph *h = mk((fmi_graph_spec){ .kind = "matching", .n = 16,
	    .seed = 5 });
	round_of(h, 9);
	fmi_adj a = round_of(g, 3), b = round_of(h, 3);
	assert_true(same_adj(&a, &b));
	/* and differs between rounds */
	int differs = 0;
	for (uint32_t r = 4; r <= 6; r++) {
		b = round_of(h, r);
		differs |= !same_adj(&a, &b);
	}
	assert_true(differs);
	fm_error e = { 0 };
	FMT_FAIL(fmi_graph_round(g, 0, &a, &e), FM_EINVAL);
	assert_non_null(strstr(e.msg, "round"));
	fmi_graph_free(g);
	fmi_graph_free(h);
}

static void
test_time_varying_describe(void **state)
{
	(void)state;
	/* matching of even n: E[W] = I/2 + (J - I) / (2 (n - 1)), whose
	 * slem is 1/2 - 1/(2 (n - 1)); 64 samples get close */
	const uint32_t n = 16;
	fmi_graph *g = mk((fmi_graph_spec){ .kind = "matching", .n = n,
	    .seed = 1 });
	fmi_graph_desc d = desc(g);
	assert_int_equal(d.samples, FMI_GRAPH_SAMPLES);
	assert_true(d.connected);
	assert_true(d.degree_min >= 6); /* the union of 64 matchings */
	double want = 0.5 - 0.5 / (n - 1);
	assert_true(fabs(d.slem - want) < 0.15);
	assert_true(d.slem > want - 1e-12); /* the mean is no better */
	fmi_graph_free(g);

	g = mk((fmi_graph_spec){ .kind = "random_kregular", .n = 20, .k = 3,
	    .seed = 2 });
	d = desc(g);
	assert_int_equal(d.samples, FMI_GRAPH_SAMPLES);
	assert_true(d.degree_min > 3);
	assert_true(d.spectral_gap > 0.2 && d.spectral_gap < 1.0);
	fmi_adj a = round_of(g, 7);
	for (uint32_t i = 0; i < 20; i++) {
		assert_int_equal(fmi_adj_in_degree(&a, i), 3);
	}
	fmi_graph_free(g);
}

/* ---- mixing weights ------------------------------------------------------ */

static void
test_weights(void **state)
{
	(void)state;
	for (int s = 0; s < NSPECS; s++) {
		fmi_graph *g = mk(spec_of(s));
		fmi_adj a = round_of(g, 2);
		for (uint32_t i = 0; i < a.n; i++) {
			double sum = 0;
			for (uint32_t j = 0; j < a.n; j++) {
				double w = fmi_adj_weight(&a, i, j);
				assert_true(w >= 0 && w <= 1);
				sum += w;
				if (!a.directed) {
					assert_true(w == fmi_adj_weight(&a, j, i));
				}
			}
			assert_true(fabs(sum - 1.0) < 1e-12);
		}
		fmi_graph_free(g);
	}
	/* MH: W_ij = 1/(1 + max(d_i, d_j)); edges {0,1} {1,2} {3,4} */
	fmi_graph *g = mk(spec_of(10));
	fmi_adj a = round_of(g, 1);
	assert_true(fabs(fmi_adj_weight(&a, 0, 1) - 1.0 / 3) < 1e-15);
	assert_true(fabs(fmi_adj_weight(&a, 0, 0) - 2.0 / 3) < 1e-15);
	assert_true(fabs(fmi_adj_weight(&a, 1, 1) - 1.0 / 3) < 1e-15);
	assert_true(fabs(fmi_adj_weight(&a, 3, 4) - 1.0 / 2) < 1e-15);
	assert_true(fmi_adj_weight(&a, 0, 9) == 0.0);
	fmi_graph_desc d = desc(g);
	assert_false(d.connected);
	assert_true(fabs(d.spectral_gap) < 1e-12);
	fmi_graph_free(g);
}

/* ---- errors ------------------------------------------------------------ */

static void
expect_einval(fmi_graph_spec s, const char *field)
{
	fmi_graph *g = (fmi_graph *)&s; /* must be reset to NULL */
	fm_error e = { 0 };
	int rc = fmi_graph_new(&s, &g, &e);
	if (rc != FM_EINVAL || strstr(e.msg, field) == NULL) {
		print_error("%s: rc %d, '%s' does not name '%s'\n",
		    s.kind ? s.kind : "(null)", rc, e.msg, field);
		fail();
	}
	assert_null(g);
}

static void
test_bad_specs(void **state)
{
	(void)state;
	uint32_t loop[] = { 0, 1, 2, 2 }, far[] = { 0, 1, 1, 5 };
	expect_einval((fmi_graph_spec){ .kind = "rings", .n = 4 }, "kind");
	expect_einval((fmi_graph_spec){ .kind = NULL, .n = 4 }, "kind");
	expect_einval((fmi_graph_spec){ .kind = "ring", .n = 0 }, "n = 0");
	expect_einval((fmi_graph_spec){ .kind = "ring", .n = 4, .directed = 1 },
	    "directed");
	expect_einval((fmi_graph_spec){ .kind = "torus", .rows = 0, .cols = 3 },
	    "rows");
	expect_einval((fmi_graph_spec){ .kind = "torus", .n = 10, .rows = 3,
	    .cols = 3 }, "n = 10");
	expect_einval((fmi_graph_spec){ .kind = "kregular", .n = 5, .k = 3 },
	    "n * k is odd");
	expect_einval((fmi_graph_spec){ .kind = "kregular", .n = 5, .k = 5 },
	    "k = 5");
	expect_einval((fmi_graph_spec){ .kind = "random_kregular", .n = 7,
	    .k = 3 }, "random_kregular: k = 3");
	expect_einval((fmi_graph_spec){ .kind = "erdos_renyi", .n = 5,
	    .p = 1.5 }, "p = 1.5");
	expect_einval((fmi_graph_spec){ .kind = "erdos_renyi", .n = 5,
	    .p = NAN }, "p = ");
	expect_einval((fmi_graph_spec){ .kind = "small_world", .n = 10, .k = 3,
	    .p = 0.1 }, "k = 3");
	expect_einval((fmi_graph_spec){ .kind = "small_world", .n = 10, .k = 10,
	    .p = 0.1 }, "k = 10");
	expect_einval((fmi_graph_spec){ .kind = "small_world", .n = 10, .k = 4,
	    .p = -0.1 }, "p = -0.1");
	expect_einval((fmi_graph_spec){ .kind = "edges", .n = 3, .edges = loop,
	    .nedges = 2 }, "edge 1 (2, 2) is a self-loop");
	expect_einval((fmi_graph_spec){ .kind = "edges", .n = 3, .edges = far,
	    .nedges = 2 }, "edge 1 (1, 5) names a peer outside 0..2");
	expect_einval((fmi_graph_spec){ .kind = "edges", .n = 3, .nedges = 1 },
	    "edges:");
	expect_einval((fmi_graph_spec){ .kind = "complete", .n = 70000 },
	    "complete: n = 70000");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_torus),
		cmocka_unit_test(test_star),
		cmocka_unit_test(test_diameter_reference),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_kregular),
		cmocka_unit_test(test_seeds),
		cmocka_unit_test(test_small_world),
		cmocka_unit_test(test_erdos_renyi),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_time_varying_describe),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_bad_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
