package asynqqueue

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// Schemes are the Redis URL schemes ParseURL reads.
var Schemes = []string{"redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster"}

// ParseURL reads a Redis URL into asynq's connection options, one of:
//
//	redis://[[user]:password@]host:port[/db]            one Redis (rediss:// over TLS)
//	redis-sentinel://[[user]:password@]host:port,…/master[/db][?sentinel_password=…]
//	                                                    the primary a Sentinel set names, followed
//	                                                    through failovers (rediss-sentinel:// over TLS)
//	redis-cluster://[[user]:password@]host:port,…       a Redis Cluster, found from any of its nodes
//	                                                    (rediss-cluster:// over TLS)
//
// The password is the data nodes'; sentinels that want one of their own take sentinel_password.
func ParseURL(raw string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	user := u.User.Username()
	password, _ := u.User.Password()
	base, _ := strings.CutSuffix(u.Scheme, "-sentinel")
	base, _ = strings.CutSuffix(base, "-cluster")
	var tlsConfig *tls.Config
	addrs := strings.Split(u.Host, ",")
	if base == "rediss" {
		host, _, err := net.SplitHostPort(addrs[0])
		if err != nil {
			host = addrs[0]
		}
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return nil, fmt.Errorf("%q is not host:port", a)
		}
	}
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	db := func(s string) (int, error) {
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("database %q is not a number", s)
		}
		return n, nil
	}
	switch u.Scheme {
	case "redis", "rediss":
		if len(addrs) > 1 {
			return nil, fmt.Errorf("%s:// names one server: use redis-sentinel:// or redis-cluster:// for several", u.Scheme)
		}
		if len(path) > 1 {
			return nil, errors.New("the path is the database number: /0")
		}
		n, err := db(path[0])
		if err != nil {
			return nil, err
		}
		return asynq.RedisClientOpt{Addr: u.Host, Username: user, Password: password, DB: n, TLSConfig: tlsConfig}, nil
	case "redis-sentinel", "rediss-sentinel":
		if path[0] == "" || len(path) > 2 {
			return nil, errors.New("the path is the primary's name and the database number: /mymaster/0")
		}
		n := 0
		if len(path) == 2 {
			if n, err = db(path[1]); err != nil {
				return nil, err
			}
		}
		return asynq.RedisFailoverClientOpt{MasterName: path[0], SentinelAddrs: addrs, Username: user, Password: password,
			SentinelPassword: u.Query().Get("sentinel_password"), DB: n, TLSConfig: tlsConfig}, nil
	case "redis-cluster", "rediss-cluster":
		if path[0] != "" {
			return nil, fmt.Errorf("a cluster has no databases: drop the path %q", u.Path)
		}
		return asynq.RedisClusterClientOpt{Addrs: addrs, Username: user, Password: password, TLSConfig: tlsConfig}, nil
	}
	return nil, fmt.Errorf("scheme %q is not one of %s", u.Scheme, strings.Join(Schemes, ", "))
}
