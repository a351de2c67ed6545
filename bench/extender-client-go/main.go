// The client half of bench:extender, as kube-scheduler itself calls an extender: this program
// drives k8s.io/kubernetes/pkg/scheduler's own HTTPExtender (the code in the kube-scheduler binary
// that marshals ExtenderArgs, posts them, and decodes the answers into its node lists and scores),
// configured as MeshStor's chart configures it (nodeCacheCapable, filter and prioritize verbs).
// Per round it runs Filter and then Prioritize on what passed, as one scheduling cycle does, and
// times the pair.
//
// Input (stdin, JSON): {"url": "http://127.0.0.1:PORT", "bodies": [ExtenderArgs JSON, ...],
// "warmUpRounds": N, "rounds": N}. Output (stdout, JSON): {"latenciesMs": [...], "cpuMicros": N,
// "wallMs": N}, the same result as bench/extender-client.ts gives.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler"
	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

type job struct {
	URL          string   `json:"url"`
	Bodies       []string `json:"bodies"`
	WarmUpRounds int      `json:"warmUpRounds"`
	Rounds       int      `json:"rounds"`
}

type result struct {
	LatenciesMs []float64 `json:"latenciesMs"`
	CPUMicros   int64     `json:"cpuMicros"`
	WallMs      float64   `json:"wallMs"`
}

// one pod of the job: the Pod and its candidate nodes as the scheduler holds them
type podCase struct {
	pod   *v1.Pod
	nodes []fwk.NodeInfo
}

func cpuMicros() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Usec + ru.Utime.Sec*1e6 + ru.Stime.Usec + ru.Stime.Sec*1e6
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "extender-client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var j job
	if err := json.NewDecoder(os.Stdin).Decode(&j); err != nil {
		fail("reading the job from stdin: %v", err)
	}
	if len(j.Bodies) == 0 {
		fail("the job has no bodies")
	}
	cases := make([]podCase, 0, len(j.Bodies))
	for i, b := range j.Bodies {
		var args extenderv1.ExtenderArgs
		if err := json.Unmarshal([]byte(b), &args); err != nil || args.Pod == nil || args.NodeNames == nil {
			fail("body %d is not ExtenderArgs with a Pod and NodeNames: %v", i, err)
		}
		nodes := make([]fwk.NodeInfo, 0, len(*args.NodeNames))
		for _, name := range *args.NodeNames {
			ni := framework.NewNodeInfo()
			ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
			nodes = append(nodes, ni)
		}
		cases = append(cases, podCase{pod: args.Pod, nodes: nodes})
	}
	ext, err := scheduler.NewHTTPExtender(&schedulerapi.Extender{
		URLPrefix:        j.URL,
		FilterVerb:       "filter",
		PrioritizeVerb:   "prioritize",
		Weight:           1,
		NodeCacheCapable: true,
		HTTPTimeout:      metav1.Duration{Duration: 2 * time.Second},
	})
	if err != nil {
		fail("NewHTTPExtender: %v", err)
	}
	round := func(i int) float64 {
		c := cases[i%len(cases)]
		t := time.Now()
		passed, _, unresolvable, err := ext.Filter(c.pod, c.nodes)
		if err != nil {
			fail("filter: %v", err)
		}
		if len(passed)+len(unresolvable) != len(c.nodes) {
			fail("filter kept %d and refused %d of %d nodes", len(passed), len(unresolvable), len(c.nodes))
		}
		scores, _, err := ext.Prioritize(c.pod, passed)
		if err != nil {
			fail("prioritize: %v", err)
		}
		for _, s := range *scores {
			if s.Score < 0 || s.Score > extenderv1.MaxExtenderPriority {
				fail("prioritize scored %s %d, outside 0..%d", s.Host, s.Score, extenderv1.MaxExtenderPriority)
			}
		}
		return float64(time.Since(t).Nanoseconds()) / 1e6
	}
	for i := 0; i < j.WarmUpRounds; i++ {
		round(i)
	}
	out := result{LatenciesMs: make([]float64, 0, j.Rounds)}
	cpu0 := cpuMicros()
	t0 := time.Now()
	for i := 0; i < j.Rounds; i++ {
		out.LatenciesMs = append(out.LatenciesMs, round(i))
	}
	out.WallMs = float64(time.Since(t0).Nanoseconds()) / 1e6
	out.CPUMicros = cpuMicros() - cpu0
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("writing the result: %v", err)
	}
}
