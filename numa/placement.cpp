#include "numa/placement.h"
#include "numa/hwloc_process.h"

#include <hwloc.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "base/error.h"

namespace cc {

const char* numa_mode_name(NumaMode m) {
  switch (m) {
    case NumaMode::Auto: return "auto";
    case NumaMode::Off: return "off";
    case NumaMode::Distribute: return "distribute";
    case NumaMode::Isolate: return "isolate";
  }
  return "?";
}

NumaMode parse_numa_mode(const std::string& s) {
  for (NumaMode m : {NumaMode::Auto, NumaMode::Off, NumaMode::Distribute, NumaMode::Isolate}) {
    if (s == numa_mode_name(m)) return m;
  }
  fail("unknown NUMA mode '", s, "' (expected auto, off, distribute or isolate)");
}

std::vector<unsigned> parse_cpu_list(const std::string& s) {
  std::set<unsigned> out;
  size_t a = 0;
  auto num = [&](const std::string& t) -> unsigned {
    if (t.empty() || t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos) {
      fail("bad CPU list '", s, "': '", t, "' is not a CPU number (expected e.g. 0-3,8)");
    }
    return static_cast<unsigned>(std::stoul(t));
  };
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    const std::string item = s.substr(a, b - a);
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      out.insert(num(item));
    } else {
      const unsigned lo = num(item.substr(0, dash)), hi = num(item.substr(dash + 1));
      if (hi < lo) fail("bad CPU list '", s, "': range ", item, " is reversed");
      if (hi - lo > 65536) fail("bad CPU list '", s, "': range ", item, " is too large");
      for (unsigned c = lo; c <= hi; ++c) out.insert(c);
    }
    a = b + 1;
  }
  return {out.begin(), out.end()};
}

std::string cpu_list_text(const std::vector<unsigned>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j > i ? cat(cpus[i], "-", cpus[j]) : cat(cpus[i]);
    i = j + 1;
  }
  return out.empty() ? "(none)" : out;
}

PlacementRequest placement_from_env() {
  PlacementRequest r;
  if (const char* e = std::getenv("CACHECLIP_NUMA"); e && *e) r.mode = parse_numa_mode(e);
  if (const char* e = std::getenv("CACHECLIP_AUX_CPUS"); e && *e) r.aux_cpus = parse_cpu_list(e);
  if (const char* e = std::getenv("CACHECLIP_PRIMARY_CPUS"); e && *e) r.primary_cpus = parse_cpu_list(e);
  if (const char* e = std::getenv("CACHECLIP_AUX_CORES"); e && *e) {
    const std::vector<unsigned> v = parse_cpu_list(e);
    if (v.size() != 1) fail("CACHECLIP_AUX_CORES must be one number, not '", e, "'");
    r.aux_cores = static_cast<int>(v[0]);
  }
  return r;
}

namespace {

// The team of a set of PUs: its nodes and one thread per core it touches.
TeamPlan team_of(const Topology& t, std::vector<unsigned> cpus) {
  std::sort(cpus.begin(), cpus.end());
  TeamPlan p;
  std::set<unsigned> nodes;
  for (const CoreInfo& c : t.core_list) {
    const bool in = std::any_of(c.pus.begin(), c.pus.end(),
                                [&](unsigned u) { return std::binary_search(cpus.begin(), cpus.end(), u); });
    if (in) {
      ++p.threads;
      nodes.insert(c.node);
    }
  }
  p.cpus = std::move(cpus);
  p.nodes.assign(nodes.begin(), nodes.end());
  return p;
}

std::vector<unsigned> pus_of_cores(const Topology& t, size_t first, size_t count) {
  std::vector<unsigned> out;
  for (size_t i = first; i < first + count && i < t.core_list.size(); ++i) {
    out.insert(out.end(), t.core_list[i].pus.begin(), t.core_list[i].pus.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<unsigned> all_pus(const Topology& t) { return pus_of_cores(t, 0, t.core_list.size()); }

void check_exist(const Topology& t, const std::vector<unsigned>& cpus, const char* what) {
  const std::vector<unsigned> all = all_pus(t);
  for (unsigned c : cpus) {
    if (!std::binary_search(all.begin(), all.end(), c)) {
      fail(what, " names CPU ", c, ", which this machine does not have (its CPUs: ", cpu_list_text(all), ")");
    }
  }
}

}  // namespace

PlacementPlan make_plan(const Topology& t, const PlacementRequest& req) {
  if (t.core_list.empty()) fail("the topology has no cores");
  PlacementPlan plan;
  plan.all_cpus = all_pus(t);
  NumaMode mode = req.mode;
  if (!req.aux_cpus.empty() || !req.primary_cpus.empty()) {
    if (mode == NumaMode::Off || mode == NumaMode::Distribute) {
      fail("--aux-cpus / --primary-cpus need --numa isolate or auto, not ", numa_mode_name(mode));
    }
    mode = NumaMode::Isolate;
  }
  if (mode == NumaMode::Auto) mode = t.core_list.size() >= 2 ? NumaMode::Isolate : NumaMode::Off;
  plan.mode = mode;
  if (mode == NumaMode::Off || mode == NumaMode::Distribute) {
    plan.aux = plan.primary = team_of(t, plan.all_cpus);
    plan.bind = mode == NumaMode::Distribute;
    if (req.mode == NumaMode::Auto) plan.note = "one core: both models share it";
    return plan;
  }
  // Isolate.
  plan.bind = true;
  plan.concurrent = true;
  std::vector<unsigned> aux, prim;
  if (!req.aux_cpus.empty()) {
    check_exist(t, req.aux_cpus, "--aux-cpus");
    aux = req.aux_cpus;
    if (!req.primary_cpus.empty()) {
      check_exist(t, req.primary_cpus, "--primary-cpus");
      prim = req.primary_cpus;
    } else {
      for (unsigned c : plan.all_cpus) {
        if (!std::binary_search(aux.begin(), aux.end(), c)) prim.push_back(c);
      }
    }
  } else if (!req.primary_cpus.empty()) {
    check_exist(t, req.primary_cpus, "--primary-cpus");
    prim = req.primary_cpus;
    for (unsigned c : plan.all_cpus) {
      if (!std::binary_search(prim.begin(), prim.end(), c)) aux.push_back(c);
    }
  } else if (std::count_if(t.nodes.begin(), t.nodes.end(), [](const NumaNodeInfo& n) { return !n.cpus.empty(); }) >= 2) {
    // Nodes with CPUs only: memory-only nodes (CXL expanders, HBM in flat mode) host no team.
    std::vector<unsigned> with_cpus;
    for (const auto& n : t.nodes) {
      if (!n.cpus.empty()) with_cpus.push_back(n.os_index);
    }
    const int idx = req.aux_node < 0 ? static_cast<int>(with_cpus.size()) - 1 : req.aux_node;
    if (idx >= static_cast<int>(with_cpus.size())) {
      fail("aux node ", idx, " does not exist (", with_cpus.size(), " NUMA nodes with CPUs)");
    }
    const unsigned node = with_cpus[static_cast<size_t>(idx)];
    for (const CoreInfo& c : t.core_list) {
      auto& dst = c.node == node ? aux : prim;
      dst.insert(dst.end(), c.pus.begin(), c.pus.end());
    }
  } else {
    if (t.core_list.size() < 2) fail("--numa isolate needs at least two cores; this machine has one");
    const size_t n = t.core_list.size();
    const size_t k = req.aux_cores > 0 ? static_cast<size_t>(req.aux_cores) : std::max<size_t>(1, n / 8);
    if (k >= n) fail("the auxiliary model cannot take ", k, " of the ", n, " cores: the primary needs at least one");
    aux = pus_of_cores(t, n - k, k);  // the last cores
    prim = pus_of_cores(t, 0, n - k);
    plan.lend_aux_cores = true;
  }
  std::sort(aux.begin(), aux.end());
  std::sort(prim.begin(), prim.end());
  for (unsigned c : aux) {
    if (std::binary_search(prim.begin(), prim.end(), c)) fail("CPU ", c, " is in both the aux and the primary set");
  }
  if (aux.empty()) fail("the auxiliary model's CPU set is empty");
  if (prim.empty()) fail("the primary model's CPU set is empty");
  plan.aux = team_of(t, aux);
  plan.primary = team_of(t, prim);
  if (plan.aux.nodes == plan.primary.nodes) plan.lend_aux_cores = true;  // one node shared
  std::vector<unsigned> both(aux);
  both.insert(both.end(), prim.begin(), prim.end());
  std::sort(both.begin(), both.end());
  plan.all_cpus = both;
  return plan;
}

std::string PlacementPlan::describe() const {
  auto nodes = [](const std::vector<unsigned>& n) {
    std::string s;
    for (unsigned x : n) {
      if (!s.empty()) s += ',';
      s += cat(x);
    }
    return s;
  };
  std::string out = cat("mode        ", numa_mode_name(mode), concurrent ? " (aux and primary run concurrently)" : " (sequential: both models share the cores)", "\n");
  out += cat("aux         CPUs ", cpu_list_text(aux.cpus), ", ", aux.threads, " thread(s), NUMA node(s) ", nodes(aux.nodes), "\n");
  out += cat("primary     CPUs ", cpu_list_text(primary.cpus), ", ", primary.threads, " thread(s), NUMA node(s) ", nodes(primary.nodes), "\n");
  out += cat("binding     ", bind ? "threads bound to their CPUs" : "none", "\n");
  if (lend_aux_cores) out += "recompute   the primary also uses the aux cores once the selection is made\n";
  if (!note.empty()) out += cat("note        ", note, "\n");
  return out;
}


bool bind_current_thread(const std::vector<unsigned>& cpus) {
  if (cpus.empty()) fail("cannot bind a thread to an empty CPU set");
  hwloc_topology_t t = process_topology();
  if (!t) return false;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  for (unsigned c : cpus) hwloc_bitmap_set(set, c);
  const int rc = hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(set);
  return rc == 0;
}

std::vector<unsigned> current_thread_cpus() {
  std::vector<unsigned> out;
  hwloc_topology_t t = process_topology();
  if (!t) return out;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (hwloc_get_cpubind(t, set, HWLOC_CPUBIND_THREAD) == 0) {
    unsigned id;
    hwloc_bitmap_foreach_begin(id, set) { out.push_back(id); }
    hwloc_bitmap_foreach_end();
  }
  hwloc_bitmap_free(set);
  return out;
}

std::vector<std::pair<int, size_t>> bytes_per_node(const void* p, size_t n, size_t stride) {
  std::map<int, size_t> acc;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto base = reinterpret_cast<uintptr_t>(p) / page * page;
  const auto end = reinterpret_cast<uintptr_t>(p) + n;
  stride = std::max<size_t>(stride, 1);
  std::vector<void*> pages;
  for (uintptr_t a = base; a < end; a += page * stride) pages.push_back(reinterpret_cast<void*>(a));
  std::vector<int> status(pages.size(), -1);
  for (size_t i = 0; i < pages.size(); i += 1024) {
    const size_t cnt = std::min<size_t>(1024, pages.size() - i);
    // move_pages(pid 0, count, pages, nodes = NULL, status, flags 0): query where each page is.
    if (syscall(SYS_move_pages, 0, cnt, pages.data() + i, nullptr, status.data() + i, 0) != 0) return {};
  }
  for (int s : status) {
    if (s >= 0) acc[s] += page * stride;
  }
  return {acc.begin(), acc.end()};
}

}  // namespace cc
