//! Which cluster: --kubeconfig, --context, KUBECONFIG, token and exec auth.

use crate::common::*;

#[test]
fn context_flag_selects_the_cluster() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "dead", "t0ken");
    let kc = kc.to_str().unwrap();
    let args = [
        "diagnose",
        "--kubeconfig",
        kc,
        "-s",
        FLOW.0,
        "-d",
        "10.244.0.6",
        "-p",
        "8080",
    ];
    let dead = run(dir.path(), &args);
    assert_bad_input(
        &dead,
        &[
            "cannot reach the API server at http://127.0.0.1:9",
            "context dead",
        ],
    );
    let mut with_ctx = args.to_vec();
    with_ctx.extend(["--context", "fake"]);
    let ok = run(dir.path(), &with_ctx);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
}

#[test]
fn kubeconfig_env_is_used() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let out = command(dir.path())
        .env("KUBECONFIG", &kc)
        .args(["diagnose", "-s", FLOW.0, "-d", "10.244.0.6", "-p", "8080"])
        .output()
        .unwrap();
    let r = finish(out);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(api.count("GET", "/api/v1/nodes") >= 1);
}

#[test]
fn default_kubeconfig_in_home_is_used() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let kube = dir.path().join(".kube");
    std::fs::create_dir_all(&kube).unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    std::fs::rename(kc, kube.join("config")).unwrap();
    let r = run(
        dir.path(),
        &["diagnose", "-s", FLOW.0, "-d", "10.244.0.6", "-p", "8080"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn unknown_context_lists_the_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "http://127.0.0.1:9", "fake", "t");
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--context",
            "prod",
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            "80",
        ],
    );
    assert_bad_input(&r, &["no context \"prod\"", "fake, dead", "--context"]);
}

#[test]
fn missing_kubeconfig_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--kubeconfig",
            "/nonexistent/kc",
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            "80",
        ],
    );
    assert_bad_input(&r, &["/nonexistent/kc", "does not exist"]);
    let out = command(dir.path())
        .env("KUBECONFIG", "/nonexistent/env-kc")
        .args(["diagnose", "-s", FLOW.0, "-d", FLOW.1, "-p", "80"])
        .output()
        .unwrap();
    assert_bad_input(&finish(out), &["/nonexistent/env-kc", "$KUBECONFIG"]);
}

#[test]
fn no_kubeconfig_outside_a_cluster_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &["diagnose", "-s", FLOW.0, "-d", FLOW.1, "-p", "80"],
    );
    assert_bad_input(&r, &["no kubeconfig", "--kubeconfig", "--snapshot"]);
}

#[test]
fn wrong_token_is_401() {
    let api = server_with(|s| s.token = Some("right".into()));
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "wrong");
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            "80",
        ],
    );
    assert_bad_input(&r, &["401", "refused the credentials", "list nodes"]);
}

#[test]
fn exec_auth_provides_the_token() {
    let api = server_with(|s| s.token = Some("from-exec".into()));
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("cred.sh");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-exec\"}}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kc = dir.path().join("kc");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never\n",
            api.url,
            plugin.display()
        ),
    )
    .unwrap();
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-s",
            FLOW.0,
            "-d",
            "10.244.0.6",
            "-p",
            "8080",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
