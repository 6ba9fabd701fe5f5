// A Go program that logs a line, then dies the way Go programs die: a panic (runtime
// error, error value, value of its own type, re-panicked after recover) or a fatal error.
//
//	go run panic.go KIND    (KIND: index, error, value, recovered, deadlock)
package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

type quota struct{ Remaining int }

func pick(xs []int, i int) int { return xs[i] }

func main() {
	kind := os.Args[1]
	fmt.Printf("%s INFO worker starting kind=%s\n", time.Now().UTC().Format(time.RFC3339), kind)
	switch kind {
	case "index":
		fmt.Println(pick([]int{1, 2, 3}, len(os.Args)+4))
	case "error":
		panic(fmt.Errorf("chat backend unavailable: %w", errors.New("connection refused")))
	case "value":
		panic(quota{Remaining: 0})
	case "recovered":
		defer func() { panic(recover()) }()
		panic("session store corrupted")
	case "deadlock":
		var wg sync.WaitGroup
		wg.Add(1)
		wg.Wait()
	}
}
