package redistest

import "strings"

// ACLSetUser is the README's ACL SETUSER line for an application user
// whose keys start with myapp: (and whose password is PASSWORD): the
// keys, and the commands storagegen's runtime sends, and nothing else.
// Main creates such a user for the tests, with the tests' prefixes.
const ACLSetUser = "ACL SETUSER myapp on >PASSWORD resetkeys ~myapp:* resetchannels -@all " +
	"+ping +hello +client|id +client|unblock +client|tracking " +
	"+command +cluster|slots " +
	"+lpush +rpush +rpop +brpop +blmove +llen +lrange +lindex +lrem " +
	"+get +set +del +exists +pttl " +
	"+hget +hmget +hset +hsetnx +hdel +hexists +hincrby +hrandfield " +
	"+zadd +zrem +zcard +zcount +zscore +zmscore +zrange +zrangebyscore " +
	"+evalsha +eval +time +wait +memory|usage"

// AppUserRules returns the rules of ACLSetUser after its password, with
// a key pattern for each of prefixes instead of ~myapp:*.
func AppUserRules(prefixes ...string) []string {
	var rules []string
	for _, f := range strings.Fields(ACLSetUser)[5:] {
		if f != "~myapp:*" {
			rules = append(rules, f)
			continue
		}
		for _, p := range prefixes {
			rules = append(rules, "~"+p+"*")
		}
	}
	return rules
}
