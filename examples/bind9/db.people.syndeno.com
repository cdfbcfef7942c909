; Initial zone of the flow namespace people.syndeno.com. The FNAA adds and
; removes flow records at run time (RFC 2136); named signs them (DNSSEC).
; Never edit this file while named runs: use `rndc freeze` / `rndc thaw`.
$ORIGIN people.syndeno.com.
$TTL 3600
@       IN SOA  ns1.syndeno.com. hostmaster.syndeno.com. (
                1          ; serial (named increments it on each update)
                3600       ; refresh
                600        ; retry
                604800     ; expire
                60 )       ; negative TTL: how long "no such flow" is cached
@       IN NS   ns1.syndeno.com.

; Optional: the FNAA of the namespace, when it is not registered by the host
; itself (register_namespace). See docs/fns.md section 4.
; _fnaa._tcp              IN PTR fnaa._fnaa._tcp.people.syndeno.com.
; fnaa._fnaa._tcp         IN SRV 0 0 65432 fnaa.syndeno.com.
; fnaa._fnaa._tcp         IN TXT "tls"
