//! The usual suspects: components in front of WebSocket servers whose *default* idle timeout or
//! connection lifetime is a well-known number, with where that default is documented. The one
//! place these numbers live; a finding names those within [`SUSPECT_TOLERANCE`] of what it
//! measured.

use crate::record::Suspect;

/// How close a measured timeout must be to a default to name the component: 5 % (the issue's
/// own bar for "the right T"), at least a second (defaults are whole seconds; the capture
/// measures last packet to FIN, a round trip more).
pub const SUSPECT_TOLERANCE: f64 = 0.05;

/// Idle timeouts: the connection is closed after this long with no data either way (or, for
/// nginx, none from the upstream).
pub const IDLE_TIMEOUTS: &[Suspect] = &[
    Suspect {
        name: "nginx",
        setting: "proxy_read_timeout",
        default_s: 60.0,
        source: "https://nginx.org/en/docs/http/websocket.html (\"closed if the proxied server does not transmit any data within 60 seconds\")",
    },
    Suspect {
        name: "Kubernetes ingress-nginx",
        setting: "nginx.ingress.kubernetes.io/proxy-read-timeout",
        default_s: 60.0,
        source: "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/ (proxy-read-timeout, default 60)",
    },
    Suspect {
        name: "AWS Application Load Balancer",
        setting: "idle_timeout.timeout_seconds",
        default_s: 60.0,
        source: "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout (default 60 s)",
    },
    Suspect {
        name: "AWS Classic Load Balancer",
        setting: "ConnectionSettings.IdleTimeout",
        default_s: 60.0,
        source: "https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-idle-timeout.html (60-second default)",
    },
    Suspect {
        name: "Heroku router",
        setting: "none (send data at least every 55 s)",
        default_s: 55.0,
        source: "https://devcenter.heroku.com/articles/http-routing#timeouts (\"each byte ... resets a rolling 55 second window\")",
    },
    Suspect {
        name: "Cloudflare proxy",
        setting: "none below Enterprise (send data at least every 100 s)",
        default_s: 100.0,
        source: "https://community.cloudflare.com/t/cloudflare-websocket-timeout/5865 (\"100 seconds is the standard timeout\")",
    },
    Suspect {
        name: "HAProxy (Debian/Ubuntu packaged haproxy.cfg)",
        setting: "timeout client / timeout server (timeout tunnel when set)",
        default_s: 50.0,
        source: "the haproxy.cfg Debian and Ubuntu install (\"timeout client 50000\", \"timeout server 50000\"); HAProxy itself has no default, see https://docs.haproxy.org/2.8/configuration.html#4.2-timeout%20tunnel",
    },
    Suspect {
        name: "OpenShift router (HAProxy)",
        setting: "tuningOptions.clientTimeout / haproxy.router.openshift.io/timeout-tunnel",
        default_s: 30.0,
        source: "oc explain ingresscontroller.spec.tuningOptions.clientTimeout (\"If unset, the default timeout is 30s\"), quoted in https://github.com/alebedev87/haproxy-timeout-tunnel",
    },
    Suspect {
        name: "Azure Load Balancer",
        setting: "idleTimeoutInMinutes",
        default_s: 240.0,
        source: "https://learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout (\"The default setting is 4 minutes\")",
    },
    Suspect {
        name: "AWS Network Load Balancer",
        setting: "tcp.idle_timeout.seconds",
        default_s: 350.0,
        source: "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html (\"default idle timeout value for TCP flows is 350 seconds\")",
    },
    Suspect {
        name: "AWS API Gateway (WebSocket API)",
        setting: "Idle Connection Timeout (fixed)",
        default_s: 600.0,
        source: "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html (10 minutes)",
    },
    Suspect {
        name: "AWS CloudFront",
        setting: "origin idle timeout (fixed)",
        default_s: 600.0,
        source: "CloudFront quotas, \"Origin response timeout (idle timeout) 10 min\", quoted in https://repost.aws/questions/QU05nkjxdfRC2E67FGICmP3g",
    },
];

/// Connection lifetimes: the connection is closed this long after it opened, whatever its
/// traffic.
pub const LIFETIMES: &[Suspect] = &[
    Suspect {
        name: "Google Cloud external HTTP(S) load balancer",
        setting: "backend service timeoutSec",
        default_s: 30.0,
        source: "https://cloud.google.com/load-balancing/docs/backend-service#timeout-setting; https://pkg.go.dev/github.com/agau4779/ingress-gce/examples/websocket (\"not an idle timeout - it's a timeout on the connection lifetime\", default 30 s)",
    },
    Suspect {
        name: "AWS API Gateway (WebSocket API)",
        setting: "Connection duration (fixed)",
        default_s: 7200.0,
        source: "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html (2 hours)",
    },
];

/// The components whose default is within [`SUSPECT_TOLERANCE`] of `seconds`.
pub fn matching(table: &[Suspect], seconds: f64) -> Vec<Suspect> {
    table
        .iter()
        .filter(|s| {
            s.default_s > 0.0
                && (s.default_s - seconds).abs() <= (s.default_s * SUSPECT_TOLERANCE).max(1.0)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_timeouts_name_the_components_with_that_default() {
        let names = |t| {
            matching(IDLE_TIMEOUTS, t)
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        };
        assert!(names(60.2).contains(&"nginx"));
        assert!(names(60.2).contains(&"AWS Application Load Balancer"));
        assert!(!names(60.2).contains(&"Heroku router"));
        assert_eq!(names(55.1), ["Heroku router"]);
        assert_eq!(names(100.4), ["Cloudflare proxy"]);
        assert_eq!(names(241.0), ["Azure Load Balancer"]);
        assert!(names(2.0).is_empty());
        let lifetimes: Vec<_> = matching(LIFETIMES, 30.02).iter().map(|s| s.name).collect();
        assert_eq!(lifetimes, ["Google Cloud external HTTP(S) load balancer"]);
    }
}
