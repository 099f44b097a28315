"""Issue 14: queue look-ahead. Prompts alternate among three 300 MiB checkpoints that ComfyUI keeps loaded side by
side until /free; the third would not fit beside the first two (25 + 3 x 300 + 200 MiB > 1 GiB). The daemon reads
the next prompt's checkpoint from the pending queue, knows what a checkpoint costs from the first load, and
unloads at the boundary (a /free sent while the prompt before runs), so no generation climbs into the limit."""

MiB = 1 << 20
LIMIT = 1024 * MiB
SERVER = ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "0", "--steps", "10", "--step-ms", "100"]
CKPTS = ["a.safetensors", "b.safetensors", "c.safetensors"] * 2


def submit(sim, ckpt, seed):
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "model": ["4", 0], "latent_image": ["5", 0]}},
        "6": {"class_type": "SimControl", "inputs": {}},
    }
    return sim.request("POST", "/prompt", {"prompt": prompt, "client_id": "oomsentry-test"})["prompt_id"]


def test_unloads_at_the_boundary_before_a_model_that_will_not_fit(daemon_factory, cgroup_factory, sim_factory):
    cg = cgroup_factory(LIMIT)
    sim = sim_factory(SERVER, cgroup=cg)
    d = daemon_factory("run", ["--url", sim.url])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    ids = [submit(sim, c, i) for i, c in enumerate(CKPTS)]
    hist = sim.wait_all_done(ids, timeout=180, alive=lambda: sim.proc.poll() is None)
    story = "\n".join(r.get("message", "") for r in d.records if r["event"] in ("action", "forecast", "decision",
                                                                                 "generation", "comfy"))
    assert [h and h["status"]["status_str"] for h in hist] == ["success"] * 6, story
    assert cg.oom_kills() == 0, story
    # the look-ahead said which prompt would not fit and that it unloads at the boundary
    ahead = d.find(lambda r: r["event"] == "forecast" and r.get("unload_at_boundary") == 1)
    assert ahead, story
    assert "checkpoint:c.safetensors" in ahead[0]["next_models"], ahead[0]
    assert ahead[0]["next_prompt_id"] == ids[2], (ahead[0], ids)
    # and the policy unloaded then, proactively, while the prompt before still ran: before any pressure
    unloads = d.find(lambda r: r["event"] == "action" and r.get("action") == "free_models" and
                     "next prompt's models" in r.get("reason", ""))
    assert unloads, story
    first = unloads[0]
    assert first["proactive"] == 1 and first["result"] == "done", first
    assert first["prompt_id"] == ids[1], (first, ids)
    assert first["rss_bytes"] < 0.9 * LIMIT, first
    # nothing harsher was needed: no interrupt, no restart
    assert not d.find(lambda r: r["event"] == "action" and r.get("action") in ("interrupt_requeue", "restart",
                                                                                "kill")), story
    # the third generation started from the unloaded level: its peak is one checkpoint and its working set
    gens = {r["prompt_id"]: r for r in d.find(lambda r: r["event"] == "generation")}
    third = gens[ids[2]]
    assert third["peak_bytes"] < 0.8 * LIMIT, third
    # what the simulator itself saw: the models really were unloaded in between
    frees = [l for l in open(sim.state) if '"event": "free"' in l]
    assert frees, "the simulator consumed no /free"
