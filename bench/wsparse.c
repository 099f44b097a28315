// SPDX-License-Identifier: GPL-2.0
/* CPU per ComfyUI progress_state message in wsmsg_parse (user/core/wsmsg.c): ComfyUI sends one to every websocket
 * at each node's start, step and end, carrying every started node of the prompt.
 * build: gcc -O2 -Iuser/core -Iuser -Iinclude bench/wsparse.c user/core/wsmsg.c user/core/jsontext.c -ljson-c -lm
 * usage: ./a.out [NODES [ITERATIONS]]   (500 nodes: ~90 KiB) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wsmsg.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc, char **argv)
{
  int nodes=argc>1?atoi(argv[1]):500, iters=argc>2?atoi(argv[2]):2000;
  size_t cap=nodes*400+200; char *b=malloc(cap); size_t n=0;
  const char *pid="0d5f2b5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
  n+=sprintf(b+n,"{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"%s\",\"nodes\":{",pid);
  for(int i=0;i<nodes;i++) n+=sprintf(b+n,"%s\"%d\":{\"value\":%d,\"max\":20,\"state\":\"%s\",\"node_id\":\"%d\",\"prompt_id\":\"%s\",\"display_node_id\":\"%d\",\"parent_node_id\":null,\"real_node_id\":\"%d\"}",i?",":"",i,i%20,i%3?"finished":"running",i,pid,i,i);
  n+=sprintf(b+n,"}}}");
  struct wsmsg m; char err[256];
  double t0=now(); for(int i=0;i<iters;i++) if(wsmsg_parse(b,n,&m,err,sizeof err)){printf("fail %s\n",err);return 1;}
  double t=(now()-t0)/iters;
  printf("nodes=%d bytes=%zu parse=%.1f us (%.0f MB/s) prompt=%s\n",nodes,n,t*1e6,n/t/1e6,m.prompt_id);
}
