/*
 * Hand-written context switch for x86-64 (System V ABI).
 *
 * A suspended context is its stack pointer; below it, from high to low
 * addresses: the return address, rbp, rbx, r12, r13, r14, r15 and one
 * 8-byte slot holding MXCSR (low 4 bytes) and the x87 control word.  The
 * ABI makes those control words callee-saved, so a switch must keep them;
 * no signal mask is touched, which is what makes swapcontext slow.
 *
 * Intel CET would reject this code (a shadow stack cannot follow a switch
 * of stacks, and entry points carry no endbr64); this file carries no CET
 * property note, so binaries linking it are not marked CET-compatible and
 * run without it.
 */
#if defined(__x86_64__)

        .text

/*
 * The first half of a switch: push the callee-saved registers and the
 * control words, and leave our MXCSR in eax and x87 control word in r8d
 * for RESUME.
 */
        .macro SAVE
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %eax                /* our MXCSR and x87 CW */
        movzwl  4(%rsp), %r8d
        .endm

/*
 * The second half, with rsp at a frame SAVE pushed: load the control words
 * only when their control bits differ from ours (eax, r8d), pop, return
 * into the code that saved the frame.  Loading them is slow, and MXCSR
 * also holds sticky exception flags (caller-saved) that differ between
 * contexts all the time: restoring those on every switch costs ~50 ns
 * here.  Each load reads exactly what one store wrote, so store forwarding
 * works.
 */
        .macro RESUME
        movl    (%rsp), %edx
        xorl    %eax, %edx
        movzwl  4(%rsp), %r9d
        xorl    %r8d, %r9d
        andl    $0xffc0, %edx               /* MXCSR: DAZ, masks, RC, FZ */
        andl    $0x1f3f, %r9d               /* CW: masks, PC, RC, X */
        orl     %r9d, %edx
        jnz     2f
1:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        /*
         * A plain ret keeps the return stack buffer balanced.  Every
         * coroutine switches from the same call site (the scheduler's
         * do_switch), and a new one is entered by a call and ends by
         * returning, so this ret and the ones after it are predicted
         * right; a pop+jmp would leave one stale entry per switch and
         * make every later ret mispredict.
         */
        ret
2:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     1b
        .endm

/* void coro__ctx_switch(struct coro__ctx *from, struct coro__ctx *to) */
        .globl  coro__ctx_switch
        .hidden coro__ctx_switch
        .type   coro__ctx_switch, @function
        .p2align 4
coro__ctx_switch:
        .cfi_startproc
        SAVE
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        RESUME
        .cfi_endproc
        .size   coro__ctx_switch, .-coro__ctx_switch

/*
 * void coro__ctx_prepare(struct coro__ctx *ctx, void *lo, void *hi)
 * No context yet (p NULL); the caller's control words in ctx->fp.
 */
        .globl  coro__ctx_prepare
        .hidden coro__ctx_prepare
        .type   coro__ctx_prepare, @function
        .p2align 4
coro__ctx_prepare:
        .cfi_startproc
        movq    $0, (%rdi)
        stmxcsr 8(%rdi)
        fnstcw  12(%rdi)
        ret
        .cfi_endproc
        .size   coro__ctx_prepare, .-coro__ctx_prepare

/*
 * void coro__ctx_start(struct coro__ctx *from, struct coro__ctx *to,
 *                      void *lo, void *hi,
 *                      struct coro__ctx *(*entry)(void))
 *
 * Save the running state into *from like coro__ctx_switch, then call
 * entry() at the 16-aligned top of the stack below hi, with the control
 * words coro__ctx_prepare recorded in *to, as the outermost
 * frame (rbp 0, return address undefined for unwinders).  When entry()
 * returns the context to go on with, the new context has ended: its state
 * is dropped and that context is resumed.  Being entered by a call and
 * left by a return keeps the return stack buffer balanced, so the switch
 * back into the starter is predicted.  *to is written when the new
 * context first switches away.
 */
        .globl  coro__ctx_start
        .hidden coro__ctx_start
        .type   coro__ctx_start, @function
        .p2align 4
coro__ctx_start:
        .cfi_startproc
        movq    %r8, %r10                   /* entry (SAVE uses r8) */
        SAVE
        movq    %rsp, (%rdi)
        andq    $-16, %rcx                  /* 16-aligned top */
        movq    %rcx, %rsp
        xorl    %ebp, %ebp                  /* end of the frame chain */
        /* Begin with the control words *to was prepared with, loading
         * them only when their control bits differ from ours. */
        movl    8(%rsi), %edx
        xorl    %eax, %edx
        movzwl  12(%rsi), %r9d
        xorl    %r8d, %r9d
        andl    $0xffc0, %edx
        andl    $0x1f3f, %r9d
        orl     %r9d, %edx
        jz      3f
        ldmxcsr 8(%rsi)
        fldcw   12(%rsi)
3:
        .cfi_undefined rip                  /* unwinders stop here */
        callq   *%r10
        movq    %rax, %rsi                  /* the context to go on with */
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %eax
        movzwl  4(%rsp), %r8d
        movq    (%rsi), %rsp
        RESUME
        .cfi_endproc
        .size   coro__ctx_start, .-coro__ctx_start

#endif /* __x86_64__ */

        .section .note.GNU-stack,"",@progbits
