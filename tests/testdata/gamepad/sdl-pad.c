/*
 * A small SDL2 game-controller reader for the gamepad tests: waits (at most 15 s) for a
 * controller, opens it through SDL's GameController API and prints one line per event
 * ("button a down", "axis leftx 16384") until the guide button has been pressed twice or
 * 60 s have passed. Lines are flushed at once so the test can follow them.
 */
#include <SDL.h>
#include <stdio.h>

int main(void) {
    if (SDL_Init(SDL_INIT_GAMECONTROLLER) != 0) {
        printf("error SDL_Init: %s\n", SDL_GetError());
        return 1;
    }
    SDL_GameController *pad = NULL;
    for (int waited = 0; waited < 15000 && !pad; waited += 50) {
        SDL_PumpEvents();
        for (int i = 0; i < SDL_NumJoysticks() && !pad; i++) {
            if (SDL_IsGameController(i)) pad = SDL_GameControllerOpen(i);
        }
        if (!pad) SDL_Delay(50);
    }
    if (!pad) {
        printf("error no game controller (%d joysticks)\n", SDL_NumJoysticks());
        fflush(stdout);
        return 2;
    }
    char *mapping = SDL_GameControllerMapping(pad);
    printf("ready %s | %s\n", SDL_GameControllerName(pad), mapping ? mapping : "no mapping");
    fflush(stdout);
    SDL_free(mapping);
    int guides = 0;
    Uint32 start = SDL_GetTicks();
    while (guides < 2 && SDL_GetTicks() - start < 60000) {
        SDL_Event ev;
        if (!SDL_WaitEventTimeout(&ev, 100)) continue;
        if (ev.type == SDL_CONTROLLERBUTTONDOWN || ev.type == SDL_CONTROLLERBUTTONUP) {
            int down = ev.type == SDL_CONTROLLERBUTTONDOWN;
            printf("button %s %s\n", SDL_GameControllerGetStringForButton(ev.cbutton.button), down ? "down" : "up");
            if (down && ev.cbutton.button == SDL_CONTROLLER_BUTTON_GUIDE) guides++;
        } else if (ev.type == SDL_CONTROLLERAXISMOTION) {
            printf("axis %s %d\n", SDL_GameControllerGetStringForAxis(ev.caxis.axis), ev.caxis.value);
        } else if (ev.type == SDL_CONTROLLERDEVICEREMOVED) {
            printf("removed\n");
        }
        fflush(stdout);
    }
    SDL_GameControllerClose(pad);
    SDL_Quit();
    return 0;
}
