"""Issue 4: oomsentry follows ComfyUI generations, measures each one and forecasts the leak."""

MiB = 1 << 20

# 6 generations fit in 1.5 GiB; the 7th would not: 25 (python) + 300 (model) + 150*n (leak) + 200 (transient)
LEAKY = ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "150", "--steps", "10", "--step-ms", "120"]
CLEAN = ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "0", "--steps", "10", "--step-ms", "120"]


def within(a, b, frac):
    return abs(a - b) <= frac * b


def run_six(daemon_factory, cgroup_factory, sim_factory, args):
    cg = cgroup_factory(1536 * MiB)
    sim = sim_factory(args, cgroup=cg)
    d = daemon_factory("observe", ["--url", sim.url, "--rss-step", "32M", "--sample-interval", "250ms",
                                   "--poll-interval", "250ms"])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    ids = sim.submit(6)
    hist = sim.wait_all_done(ids, alive=lambda: sim.proc.poll() is None)
    assert all(h and h["status"]["status_str"] == "success" for h in hist), hist
    gens = []
    for i in range(6):
        gens.append(d.wait_for(lambda r, i=i: r["event"] == "generation" and r.get("prompt_id") == ids[i],
                               what="generation record %d" % (i + 1)))
    assert cg.oom_kills() == 0
    return sim, d, ids, gens


def test_six_generations_with_leak_are_measured_and_forecast(daemon_factory, cgroup_factory, sim_factory):
    sim, d, ids, gens = run_six(daemon_factory, cgroup_factory, sim_factory, LEAKY)
    truth = {l["prompt_id"]: l for l in sim.prompt_lines()}
    baseline = gens[0]["usage_start_bytes"]  # the python interpreter before the first prompt
    assert baseline < 80 * MiB
    for i, g in enumerate(gens):
        t = truth[ids[i]]
        assert g["generation"] == i + 1
        assert g["status"] == "success"
        # what the simulator itself measured (its RSS) and what it allocated
        assert within(g["peak_bytes"], t["rss_peak_bytes"], 0.10), (i, g, t)
        assert within(g["residual_bytes"], t["rss_end_bytes"], 0.10), (i, g, t)
        allocated_residual = (300 + 150 * (i + 1)) * MiB
        assert within(g["residual_bytes"] - baseline, allocated_residual, 0.10), (i, g["residual_bytes"], baseline)
        allocated_peak = allocated_residual + 200 * MiB
        assert within(g["peak_bytes"] - baseline, allocated_peak, 0.10), (i, g["peak_bytes"], baseline)
        if i > 0:
            assert within(g["growth_bytes"], 150 * MiB, 0.25), (i, g)
    warn = d.find(lambda r: r["event"] == "leak_suspected")
    assert warn, "a leak of 150 MiB per generation must be reported"
    w = warn[0]
    assert 100 * MiB < w["leak_bytes_per_generation"] < 200 * MiB, w
    # the generation that would be killed is the 7th: the warning must come before the 6th ends
    order = d.records.index(w)
    assert order < d.records.index(gens[5]), "warning after the last generation ended"
    late = [r for r in warn if r.get("next_fits") == 0]
    assert late, "the forecast must say a later generation will not fit"


def test_no_leak_no_warning(daemon_factory, cgroup_factory, sim_factory):
    sim, d, ids, gens = run_six(daemon_factory, cgroup_factory, sim_factory, CLEAN)
    residuals = [g["residual_bytes"] for g in gens]
    assert max(residuals) - min(residuals) < 48 * MiB, residuals
    assert not d.find(lambda r: r["event"] == "leak_suspected"), d.find(lambda r: r["event"] == "leak_suspected")


def test_two_instances_from_the_config_file(daemon_factory, sim_factory, tmp_path):
    """One daemon, several ComfyUI servers: each [instance NAME] is followed on its own."""
    small = ["--model-mb", "20", "--peak-mb", "10", "--leak-mb", "0", "--steps", "8", "--step-ms", "80"]
    a, b = sim_factory(small), sim_factory(small)
    conf = tmp_path / "two.conf"
    conf.write_text("[instance flux]\nurl = %s\n\n[instance sdxl]\nurl = %s\n" % (a.url, b.url))
    d = daemon_factory("observe", ["-c", str(conf), "--poll-interval", "200ms"])
    for name, sim in (("flux", a), ("sdxl", b)):
        d.wait_for(lambda r, n=name, s=sim: r["event"] == "comfy" and r.get("instance") == n and
                   r.get("pid") == s.proc.pid, what="server of " + name)
    ida, idb = a.submit(2), b.submit(1)
    a.wait_all_done(ida)
    b.wait_all_done(idb)
    for name, ids in (("flux", ida), ("sdxl", idb)):
        for i, pid_ in enumerate(ids):
            g = d.wait_for(lambda r, n=name, p=pid_: r["event"] == "generation" and r.get("prompt_id") == p,
                           what="generation of " + name)
            assert g["instance"] == name and g["generation"] == i + 1
    assert not d.find(lambda r: r.get("instance") == "default"), "no default instance next to named ones"
