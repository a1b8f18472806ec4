/* SPDX-License-Identifier: MIT */
/* cli.h: the fedmesh command's subcommands. Each returns the exit status. */
#ifndef FMI_CLI_H
#define FMI_CLI_H

int fmi_cmd_run(int argc, char **argv);
int fmi_cmd_node(int argc, char **argv);
int fmi_cmd_launch(int argc, char **argv);
int fmi_cmd_plugins(int argc, char **argv);
int fmi_cmd_bench(int argc, char **argv);
int fmi_cmd_keygen(int argc, char **argv);
int fmi_cmd_report(int argc, char **argv);

/* Each command's --help text; its first paragraph is the synopsis that
 * `fedmesh --help` lists. */
extern const char fmi_run_usage[], fmi_node_usage[], fmi_launch_usage[],
    fmi_keygen_usage[], fmi_plugins_usage[], fmi_bench_usage[],
    fmi_report_usage[];

/* Re-executes the command with a better OpenBLAS kernel when OpenBLAS
 * fell back to a generic one on this CPU (see blas_select.c). */
void fmi_cli_select_blas(char **argv);

/* True when argv[i] is -h or --help. */
int fmi_cli_is_help(const char *a);

#endif /* FMI_CLI_H */
