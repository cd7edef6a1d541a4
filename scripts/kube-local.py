#!/usr/bin/env python3
"""Turns deploy/kubernetes into what `podman kube play` can run on one
machine (make cluster-podman), and prints it as one YAML stream.

podman runs ConfigMaps, Secrets and Pods but ignores Services, so the
Deployment's pod template becomes one Pod per replica on the host's
network, each on its own port, peering by a static --peers list instead of
the headless Service; nginx on the host stands in for the Service. All the
rest comes from the manifests unchanged: image, args, envFrom, security
context, probes, volumes.

usage: kube-local.py MANIFESTS_DIR REPLICAS BASE_PORT S3_ENDPOINT CREDENTIALS_FILE CLUSTER_KEY_FILE
"""
import os
import sys

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    manifests, replicas, base, endpoint, credentials, key_file = sys.argv[1:7]
    replicas, base = int(replicas), int(base)
    docs = []
    for name in ("configmap.yaml", "secret.example.yaml", "deployment.yaml"):
        docs += load(os.path.join(manifests, name))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    secret = next(d for d in docs if d["kind"] == "Secret")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    ports = [base + i for i in range(replicas)]

    data = config["data"]
    data.pop("FAAS_PEERS_DNS", None)
    data.pop("FAAS_PORT", None)
    data.update(
        FAAS_PEERS=",".join(f"http://127.0.0.1:{p}" for p in ports),
        FAAS_S3_ENDPOINT=endpoint,
        FAAS_STORE="s3://faas",
        FAAS_HOST="127.0.0.1",
        FAAS_DRAIN_DELAY_MS="1000",
        FAAS_GRACE_MS="5000",
    )

    # Real values for the example Secret: the store's keys and the cluster
    # key of this run; no API or invoke token, so that the README's curl
    # session works as it does against `make run`.
    values = dict(line.split("=", 1) for line in open(credentials).read().split())
    secret["stringData"] = {
        "AWS_ACCESS_KEY_ID": values["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": values["AWS_SECRET_ACCESS_KEY"],
        "cluster-key": open(key_file).read().strip(),
    }
    secret["metadata"].pop("annotations", None)

    template = deployment["spec"]["template"]
    pods = []
    for i, port in enumerate(ports):
        # Pods on the host network still have their own /tmp (sockets).
        spec = yaml.safe_load(yaml.safe_dump(template["spec"]))
        spec["hostNetwork"] = True
        for volume in spec["volumes"]:
            if "secret" in volume:
                volume["secret"]["items"] = [
                    item for item in volume["secret"]["items"] if item["key"] == "cluster-key"
                ]
        image = os.environ.get("CLUSTER_IMAGE")
        for container in spec.get("initContainers", []) + spec["containers"]:
            if image:
                container["image"] = image
        for container in spec["containers"]:
            container["args"] = [
                a
                for a in container["args"]
                if not a.startswith(("--api-token-file", "--invoke-token-file"))
            ]
            container["env"] = [
                e for e in container["env"] if e["name"] != "FAAS_REPLICA_NAME"
            ] + [
                {"name": "FAAS_REPLICA_NAME", "value": f"faas-{i}"},
                {"name": "FAAS_PORT", "value": str(port)},
            ]
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    container[probe]["httpGet"]["port"] = port
            container["ports"] = [{"name": "http", "containerPort": port, "hostPort": port}]
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"faas-{i}", "labels": dict(template["metadata"]["labels"])},
                "spec": spec,
            }
        )
    yaml.safe_dump_all([config, secret] + pods, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
