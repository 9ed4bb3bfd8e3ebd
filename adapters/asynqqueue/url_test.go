package asynqqueue_test

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue"
)

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]asynq.RedisConnOpt{
		"redis://127.0.0.1:6379/9": asynq.RedisClientOpt{Addr: "127.0.0.1:6379", DB: 9},
		"redis://:pw@h:6379":       asynq.RedisClientOpt{Addr: "h:6379", Password: "pw"},
		"redis://app:pw@h:6379/0":  asynq.RedisClientOpt{Addr: "h:6379", Username: "app", Password: "pw"},
		"redis-sentinel://:pw@s1:26379,s2:26379,s3:26379/mymaster/2?sentinel_password=spw": asynq.RedisFailoverClientOpt{
			MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379", "s3:26379"}, Password: "pw", SentinelPassword: "spw", DB: 2},
		"redis-sentinel://s1:26379/mymaster":  asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379"}},
		"redis-cluster://:pw@n1:6379,n2:6379": asynq.RedisClusterClientOpt{Addrs: []string{"n1:6379", "n2:6379"}, Password: "pw"},
	} {
		got, err := asynqqueue.ParseURL(raw)
		require.NoError(t, err, raw)
		assert.Equal(t, want, got, raw)
	}

	for raw, server := range map[string]string{"rediss://h.example:6380/0": "h.example", "rediss-sentinel://s1.example:26379,s2:26379/m": "s1.example",
		"rediss-cluster://n1.example:6379,n2:6379": "n1.example"} {
		got, err := asynqqueue.ParseURL(raw)
		require.NoError(t, err, raw)
		var name string
		switch o := got.(type) {
		case asynq.RedisClientOpt:
			name = o.TLSConfig.ServerName
		case asynq.RedisFailoverClientOpt:
			name = o.TLSConfig.ServerName
		case asynq.RedisClusterClientOpt:
			name = o.TLSConfig.ServerName
		}
		assert.Equal(t, server, name, "%s is TLS to %s", raw, server)
	}

	for raw, msg := range map[string]string{
		"http://h:6379":                   "scheme",
		"redis://h:6379,h2:6379/0":        "redis-sentinel",
		"redis://h:6379/zero":             "not a number",
		"redis://h:6379/0/1":              "database number",
		"redis-sentinel://s1:26379":       "primary's name",
		"redis-sentinel://s1:26379/m/x":   "not a number",
		"redis-cluster://n1:6379/0":       "no databases",
		"redis-cluster://n1,n2:6379":      "host:port",
		"redis-sentinel://s1:26379/m/0/1": "primary's name",
	} {
		_, err := asynqqueue.ParseURL(raw)
		if assert.Error(t, err, raw) {
			assert.Contains(t, err.Error(), msg, raw)
		}
	}
}
