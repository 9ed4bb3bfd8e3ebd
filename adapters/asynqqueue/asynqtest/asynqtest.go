// Package asynqtest gives tests a Redis: the server named by TEST_REDIS_URL (default the
// local one, database 9) and a queue name of their own.
package asynqtest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultURL is the Redis tests use unless TEST_REDIS_URL says otherwise.
const DefaultURL = "redis://127.0.0.1:6379/9"

// RedisURL returns the test Redis's URL. When no server answers the test is skipped — or
// fails under CI=true, where a missing service must never pass silently.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		u = DefaultURL
	}
	opt, err := asynq.ParseRedisURI(u)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI=true: %v", u, err)
		}
		t.Skipf("no Redis at %s (%v); run make test to start one", u, err)
	}
	return u
}

// QueueName returns a queue name no other test uses, and deletes the queue when the test ends.
func QueueName(t testing.TB, redisURL string) string {
	name := "test-" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		opt, err := asynq.ParseRedisURI(redisURL)
		if err != nil {
			return
		}
		ins := asynq.NewInspector(opt)
		defer ins.Close()
		_ = ins.DeleteQueue(name, true)
	})
	return name
}
