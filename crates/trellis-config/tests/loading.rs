//! Loading behaviour users rely on: lists, JSON, directories, namespaces, YAML 1.1 habits.

use trellis_config::{Code, LoadOptions, Spec, load_paths, load_str};

#[test]
fn a_list_expands_and_positions_point_into_its_items() {
    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {ports: [{port: 80}]}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n  spec:\n    ports:\n    - port: http\n";
    let loaded = load_str("list.yaml", yaml, &LoadOptions::default());
    assert_eq!(loaded.resources.len(), 1);
    assert_eq!(loaded.resources[0].name, "a");
    let d = &loaded.diagnostics[0];
    assert_eq!(
        (d.code, d.name.as_str(), d.line, d.column),
        (Code::SchemaValidation, "b", 13, 13)
    );
}

#[test]
fn json_documents_load_with_positions() {
    let json = "{\n  \"apiVersion\": \"networking.istio.io/v1\",\n  \"kind\": \"DestinationRule\",\n  \"metadata\": {\"name\": \"r\"},\n  \"spec\": {\"host\": \"web\", \"subsets\": [{\"name\": \"v1\", \"lables\": {}}]}\n}\n";
    let loaded = load_str("r.json", json, &LoadOptions::default());
    assert_eq!(loaded.resources.len(), 1);
    let d = &loaded.diagnostics[0];
    assert_eq!((d.code, d.line), (Code::UnknownField, 5));
    assert!(d.message.contains("did you mean `labels`"), "{}", d.message);
}

#[test]
fn directories_are_read_recursively_by_extension_in_name_order() {
    let dir = std::env::temp_dir().join(format!("trellis-dir-{}", std::process::id()));
    let sub = dir.join("nested");
    std::fs::create_dir_all(&sub).expect("dirs");
    let svc = |n: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {n}}}\nspec: {{ports: [{{port: 80}}]}}\n"
        )
    };
    std::fs::write(dir.join("b.yaml"), svc("b")).expect("write");
    std::fs::write(dir.join("a.yml"), svc("a")).expect("write");
    std::fs::write(sub.join("c.json"), "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}, \"spec\": {\"ports\": [{\"port\": 80}]}}").expect("write");
    std::fs::write(dir.join("notes.txt"), "not: [yaml").expect("write");
    let loaded = load_paths(std::slice::from_ref(&dir), &LoadOptions::default()).expect("load");
    std::fs::remove_dir_all(&dir).ok();
    let names: Vec<&str> = loaded.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(loaded.files, 3);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
}

#[test]
fn namespaces_default_as_kubectl_does() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: prod}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n";
    let loaded = load_str(
        "ns.yaml",
        yaml,
        &LoadOptions {
            default_namespace: "shop".into(),
        },
    );
    let ns: Vec<(&str, &str)> = loaded
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.namespace.as_str()))
        .collect();
    assert_eq!(ns, [("a", "shop"), ("b", "prod"), ("prod", "")]);
}

#[test]
fn yaml_1_1_habits_work_where_kubectl_accepts_them() {
    // `yes` in a boolean field is true (kubectl reads YAML 1.1); merge keys apply.
    let yaml = "defaults: &d\n  ignoreUriCase: yes\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [web]\n  http:\n  - match:\n    - uri: {prefix: /A}\n      ignoreUriCase: yes\n    route: [{destination: {host: web}}]\n";
    let loaded = load_str("v.yaml", yaml, &LoadOptions::default());
    let Spec::VirtualService(vs) = &loaded.resources[0].spec else {
        panic!("a VirtualService")
    };
    assert!(vs.http[0].matches[0].ignore_uri_case);
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.code == Code::NotAResource && d.line == 1)
    );
}

#[test]
fn wrong_api_versions_say_which_are_accepted() {
    let yaml = "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: [web]}\n";
    let loaded = load_str("v.yaml", yaml, &LoadOptions::default());
    let d = &loaded.diagnostics[0];
    assert_eq!(
        (d.code, d.line, d.column),
        (Code::UnsupportedVersion, 1, 13)
    );
    assert!(
        d.message.contains(
            "networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3"
        ),
        "{}",
        d.message
    );
}
